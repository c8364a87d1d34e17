//! `switchboard chat`: the console client. Plain mode reads one line at a time from stdin
//! and prints one line per event, for scripts and tests; on a terminal the full-screen
//! interface (tui.rs) shares the same command language (switchboard_client::console).

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use switchboard_client::console::{Action, Console, Conv};
use switchboard_client::{Client, ClientError, Target};
use switchboard_proto::{Cursor, ServerMsg};
use tokio::io::AsyncBufReadExt;

#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    /// The node to connect to, e.g. ws://127.0.0.1:8080. Give several (repeat the flag or
    /// separate with commas) to move to the next one when the current one goes away.
    #[arg(
        long,
        env = "SWITCHBOARD_SERVER",
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080"
    )]
    pub server: Vec<String>,
    /// Your name (1-32 letters, digits, '_', '-', '.').
    #[arg(long, env = "SWITCHBOARD_NAME")]
    pub name: String,
    /// The password of a registered name; an unregistered name is registered with it.
    #[arg(long, env = "SWITCHBOARD_PASSWORD")]
    pub password: Option<String>,
    /// Extra trusted certificates (PEM) for wss:// servers with certificates of their own
    /// authority.
    #[arg(long, env = "SWITCHBOARD_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Line-by-line mode even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Reconnect (and catch up on what was missed) when the node goes away, instead of exiting.
    #[arg(long)]
    pub reconnect: bool,
}

impl ChatArgs {
    /// Whether to reconnect when the node goes away: asked for, or other nodes to go to.
    pub fn reconnects(&self) -> bool {
        self.reconnect || self.server.len() > 1
    }
}

/// Runs the client; returns the process exit code.
pub async fn run(args: ChatArgs) -> anyhow::Result<i32> {
    if !args.plain && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return crate::tui::run(args).await;
    }
    Ok(plain(args).await)
}

/// Connects and signs in, printing the refusal if there is one.
pub async fn sign_in(
    args: &ChatArgs,
    console: &mut Console,
) -> Result<(Client, Vec<String>), ClientError> {
    // Try every server once, starting with the current one; keep the first that answers.
    let n = args.server.len().max(1);
    let mut last = None;
    let mut found = None;
    for k in 0..n {
        let i = (console.server + k) % n;
        let tls =
            match &args.tls_ca {
                Some(ca) => Some(switchboard_server::tls::client_config(Some(ca)).map_err(
                    |e| ClientError::Refused {
                        code: switchboard_proto::ErrorCode::BadRequest,
                        message: format!("--tls-ca: {e:#}"),
                    },
                )?),
                None => None,
            };
        let (name, pw) = (&args.name, args.password.as_deref());
        match Client::connect_as_tls(&args.server[i], name, pw, tls).await {
            Ok(ok) => {
                console.server = i;
                found = Some(ok);
                break;
            }
            Err(e @ ClientError::Refused { .. }) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    let Some((client, welcome)) = found else {
        return Err(last.unwrap_or(ClientError::Closed));
    };
    let returning = !console.me.is_empty();
    console.me = welcome.name.clone();
    let kind = if welcome.registered {
        "registered"
    } else {
        "guest"
    };
    let mut lines = vec![format!(
        "* connected to node {} as {} ({kind}); /help lists commands",
        welcome.node, welcome.name
    )];
    let mut client = client;
    // After a reconnect: rejoin rooms and fetch exactly what was missed, then the
    // conversations that moved on meanwhile.
    for room in console.joined.clone() {
        let since = console
            .convs
            .get(&Conv::Room(room.clone()))
            .map(|c| c.cursor.clone())
            .unwrap_or_default();
        let (_, missed) = client.resume_room(&room, &since).await?;
        if !missed.is_empty() {
            lines.push(format!("* {} missed message(s) in #{room}", missed.len()));
        }
        for m in missed {
            lines.extend(console.event(&ServerMsg::Message(m)));
        }
    }
    // Direct conversations that moved on meanwhile: from what this console saw of each, or
    // what the node had at the last sign-in; one missing then started while it was away.
    // (At the first sign-in they are history: /history shows them.)
    for dm in &welcome.dms {
        let seen = console.convs.get(&Conv::Dm(dm.with.clone()));
        let since = match (seen, console.dm_marks.get(&dm.with)) {
            (Some(conv), _) => conv.cursor.clone(),
            (None, Some(mark)) => mark.clone(),
            (None, None) if returning => Cursor::new(),
            (None, None) => continue,
        };
        if since != dm.cursor {
            for m in client
                .catch_up(Target::User(&dm.with), &since, &dm.cursor)
                .await?
            {
                lines.extend(console.event(&ServerMsg::Message(m)));
            }
        }
    }
    let marks = welcome
        .dms
        .iter()
        .map(|d| (d.with.clone(), d.cursor.clone()));
    console.dm_marks = marks.collect();
    Ok((client, lines))
}

async fn plain(args: ChatArgs) -> i32 {
    let mut console = Console::new();
    let (mut client, lines) = match sign_in(&args, &mut console).await {
        Ok(ok) => ok,
        Err(e) => {
            println!("! {}", describe(&e));
            return 1;
        }
    };
    print_lines(&lines);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    // After stdin ends, wait (a bounded time) for the replies to what was sent.
    let mut eof_deadline = tokio::time::Instant::now();
    loop {
        if !stdin_open && console.outstanding.is_empty() {
            let _ = client.bye().await;
            return 0;
        }
        tokio::select! {
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => match console.input(&line) {
                    Action::Send(msg) => {
                        if let Err(e) = client.send(&msg).await {
                            println!("! {}", describe(&e));
                        }
                    }
                    Action::Print(lines) => print_lines(&lines),
                    Action::Quit => {
                        let _ = client.bye().await;
                        return 0;
                    }
                },
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    eof_deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                }
            },
            msg = client.recv() => {
                let gone = match msg {
                    Ok(Some(msg)) => {
                        print_lines(&console.event(&msg));
                        matches!(msg, ServerMsg::Shutdown { .. })
                    }
                    Ok(None) => {
                        println!("* disconnected from the server");
                        true
                    }
                    Err(e) => {
                        println!("! {}", describe(&e));
                        true
                    }
                };
                if gone {
                    if !args.reconnects() {
                        return if matches!(console.outstanding.len(), 0) { 0 } else { 1 };
                    }
                    match reconnect(&args, &mut console).await {
                        Some(c) => client = c,
                        None => return 1,
                    }
                }
            },
            _ = tokio::time::sleep_until(eof_deadline), if !stdin_open => {
                let _ = client.bye().await;
                return 0;
            }
        }
    }
}

/// Tries to reconnect with exponential backoff (up to 5 s apart, for about 2 minutes).
pub async fn reconnect(args: &ChatArgs, console: &mut Console) -> Option<Client> {
    console.outstanding.clear();
    // The current node just went away: start with the next one.
    console.server = (console.server + 1) % args.server.len().max(1);
    let mut delay = Duration::from_millis(250);
    for _ in 0..40 {
        tokio::time::sleep(delay).await;
        println!("* reconnecting to {} ...", args.server[console.server]);
        match sign_in(args, console).await {
            Ok((client, lines)) => {
                print_lines(&lines);
                return Some(client);
            }
            Err(ClientError::Refused { code, message }) => {
                println!("! {code}: {message}");
                return None;
            }
            Err(_) => delay = (delay * 2).min(Duration::from_secs(5)),
        }
    }
    println!("! gave up reconnecting");
    None
}

fn print_lines(lines: &[String]) {
    for l in lines {
        println!("{l}");
    }
}

/// A client error as the user should read it.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Refused { code, message } => format!("{code}: {message}"),
        ClientError::Ws(e) => format!("cannot reach the server: {e}"),
        other => other.to_string(),
    }
}
