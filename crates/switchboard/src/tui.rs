//! The full-screen console client (ratatui): the terminal loop. What is on screen and how
//! keys and server messages change it is `screen.rs`, drawn here on the real terminal and in
//! the tests on ratatui's `TestBackend`.

mod screen;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crossterm::event::Event;
use switchboard_client::console::Console;
use switchboard_client::{Client, ClientError};
use switchboard_proto::ServerMsg;

use crate::chat::{describe, sign_in, ChatArgs};
pub use screen::{Screen, Step};

/// How often the online list is asked for again even without presence news: people who
/// share no room with this user come and go without an event.
const ONLINE_EVERY: Duration = Duration::from_secs(15);

/// How often a due online refresh may go out: a busy room's leaves become one request.
const REFRESH_TICK: Duration = Duration::from_secs(1);

/// Runs the full-screen client on the terminal; returns the process exit code.
pub async fn run(args: ChatArgs) -> anyhow::Result<i32> {
    let (mut client, mut screen) = match open(&args).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("! {}", describe(&e));
            return Ok(1);
        }
    };
    // Terminal events come from a blocking thread through a bounded channel.
    let (key_tx, mut key_rx) = tokio::sync::mpsc::channel::<Event>(64);
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if key_tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    let mut tick = tokio::time::interval(REFRESH_TICK);
    let mut last_online = tokio::time::Instant::now();
    let mut terminal = ratatui::init();
    let code = loop {
        terminal.draw(|f| screen.draw(f))?;
        tokio::select! {
            ev = key_rx.recv() => {
                let Some(Event::Key(key)) = ev else { continue };
                if let Some(code) = on_key(&mut screen, &mut client, key).await {
                    let _ = client.bye().await;
                    break code;
                }
            }
            _ = tick.tick() => {
                if last_online.elapsed() >= ONLINE_EVERY {
                    screen.want_refresh();
                }
                if let Some(who) = screen.take_refresh() {
                    last_online = tokio::time::Instant::now();
                    // A failure shows up as the connection ending, handled below.
                    let _ = client.send(&who).await;
                }
            }
            msg = client.recv() => match msg {
                Ok(Some(msg)) => {
                    let shutdown = matches!(msg, ServerMsg::Shutdown { .. });
                    screen.event(&msg);
                    if shutdown && !args.reconnects() {
                        // Leave the reason on screen for a moment before restoring the terminal.
                        terminal.draw(|f| screen.draw(f))?;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        break 0;
                    }
                }
                Ok(None) | Err(_) => {
                    if !args.reconnects() {
                        break 1;
                    }
                    screen.status = "reconnecting...".into();
                    terminal.draw(|f| screen.draw(f))?;
                    match reconnect_quiet(&args, &mut screen).await {
                        Some(c) => {
                            client = c;
                            screen.status = format!("{} - reconnected", args.name);
                        }
                        None => break 1,
                    }
                }
            }
        }
    };
    ratatui::restore();
    Ok(code)
}

/// Signs in and sets up the screen, its online list due to be asked for.
pub async fn open(args: &ChatArgs) -> Result<(Client, Screen), ClientError> {
    let mut console = Console::new();
    let (client, lines) = sign_in(args, &mut console).await?;
    let status = format!("{} - Enter sends, Tab switches, Esc quits", args.name);
    Ok((client, Screen::new(console, status, lines)))
}

/// Takes in one key and sends what it asks for; `Some(exit code)` when the client is done.
pub async fn on_key(
    screen: &mut Screen,
    client: &mut Client,
    key: crossterm::event::KeyEvent,
) -> Option<i32> {
    match screen.key(key) {
        Step::Stay => None,
        Step::Send(msg) => {
            if let Err(e) = client.send(&msg).await {
                screen.notice(vec![format!("! {}", describe(&e))]);
            }
            None
        }
        Step::Quit => Some(0),
    }
}

async fn reconnect_quiet(args: &ChatArgs, screen: &mut Screen) -> Option<Client> {
    screen.console.outstanding.clear();
    // The current node just went away: start with the next one.
    screen.console.server = (screen.console.server + 1) % args.server.len().max(1);
    let mut delay = Duration::from_millis(250);
    for _ in 0..40 {
        tokio::time::sleep(delay).await;
        if let Ok((client, lines)) = sign_in(args, &mut screen.console).await {
            screen.notice(lines);
            // Who came and went while the connection was down is unknown: ask.
            screen.want_refresh();
            return Some(client);
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    None
}
