//! The full-screen client against a real node (in this process, on a real socket): keys go
//! through the same `on_key` as on a terminal, server messages into the same `Screen`, and the
//! screen is drawn on ratatui's `TestBackend` to read what a user would see.

use std::ops::Range;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;
use ratatui::Terminal;
use switchboard_client::Client;
use switchboard_proto::ClientMsg;

use super::{on_key, open, Screen};
use crate::chat::ChatArgs;

const WIDTH: u16 = 100;
const HEIGHT: u16 = 24;
/// The columns of the three panels at WIDTH (22, the rest, 22).
const CONVERSATIONS: Range<usize> = 0..22;
const MESSAGES: Range<usize> = 22..78;
const ONLINE: Range<usize> = 78..100;
const WAIT: Duration = Duration::from_secs(10);

/// A node on a free port of 127.0.0.1; stops when dropped.
struct Node {
    url: String,
    _stop: tokio::sync::oneshot::Sender<String>,
    _dir: tempfile::TempDir,
}

async fn start_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let config = switchboard_server::Config::new("tui1", dir.path());
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(switchboard_server::serve_listeners(
        switchboard_server::Listeners::new(listener),
        config,
        async move { stop_rx.await.unwrap_or_else(|_| "test over".into()) },
    ));
    Node {
        url,
        _stop: stop,
        _dir: dir,
    }
}

fn args(node: &Node, name: &str) -> ChatArgs {
    ChatArgs {
        server: vec![node.url.clone()],
        name: name.into(),
        password: None,
        tls_ca: None,
        plain: false,
        reconnect: false,
    }
}

/// The screen as drawn: its rows, and the terminal to look at cell styles.
fn render(screen: &Screen) -> (Vec<String>, Terminal<TestBackend>) {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal.draw(|f| screen.draw(f)).unwrap();
    let buf = terminal.backend().buffer();
    let rows = (0..HEIGHT)
        .map(|y| (0..WIDTH).map(|x| buf[(x, y)].symbol()).collect())
        .collect();
    (rows, terminal)
}

/// The text of one panel, row by row, borders included, trailing blanks trimmed.
fn panel(screen: &Screen, cols: Range<usize>) -> Vec<String> {
    let (rows, _) = render(screen);
    rows.iter()
        .take(HEIGHT as usize - 3)
        .map(|r| {
            let s: String = r.chars().skip(cols.start).take(cols.len()).collect();
            s.trim_end().to_string()
        })
        .collect()
}

/// The rows of a panel's inside, without the border characters and blanks.
fn inside(screen: &Screen, cols: Range<usize>) -> Vec<String> {
    panel(screen, cols)
        .iter()
        .skip(1)
        .map(|r| r.trim_matches(|c| c == '│' || c == '└' || c == '┘' || c == '─'))
        .map(|r| r.trim_end().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The input box's text line, inside its borders.
fn input_line(screen: &Screen) -> String {
    let (rows, _) = render(screen);
    let row = rows[HEIGHT as usize - 2].trim_matches('│');
    row.trim_end().to_string()
}

/// Whether the conversation `label` is shown highlighted in the left panel.
fn highlighted(screen: &Screen, label: &str) -> bool {
    let (rows, terminal) = render(screen);
    let buf = terminal.backend().buffer();
    rows.iter().enumerate().any(|(y, row)| {
        let Some(x) = row
            .chars()
            .take(CONVERSATIONS.end)
            .collect::<String>()
            .find(label)
        else {
            return false;
        };
        // Box-drawing borders are one cell but several bytes: count characters.
        let x = row[..x].chars().count() as u16;
        buf[(x, y as u16)].modifier.contains(Modifier::REVERSED)
    })
}

/// Feeds the node's messages to the screen (sending the online refreshes it asks for, as the
/// terminal loop does) until `done` holds.
async fn pump(screen: &mut Screen, client: &mut Client, done: impl Fn(&Screen) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(who) = screen.take_refresh() {
            client.send(&who).await.unwrap();
        }
        if done(screen) {
            return;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.recv_timeout(left).await {
            Ok(Some(msg)) => screen.event(&msg),
            other => panic!(
                "screen never got there ({other:?}); it shows:\n{}",
                render(screen).0.join("\n")
            ),
        }
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Types `text` and presses Enter, through the terminal loop's key handler.
async fn enter(screen: &mut Screen, client: &mut Client, text: &str) {
    for c in text.chars() {
        assert_eq!(on_key(screen, client, key(KeyCode::Char(c))).await, None);
    }
    assert_eq!(on_key(screen, client, key(KeyCode::Enter)).await, None);
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_screen_shows_conversations_messages_who_is_online_and_the_input() {
    let node = start_node().await;
    // carol is online but in no room: only the cluster-wide list can show her.
    let (_carol, _) = Client::connect_as(&node.url, "carol", None).await.unwrap();
    let (mut bob, _) = Client::connect_as(&node.url, "bob", None).await.unwrap();
    let (mut client, mut screen) = open(&args(&node, "alice")).await.unwrap();
    let s = &mut screen;
    pump(s, &mut client, |s| inside(s, ONLINE).len() == 3).await;
    assert_eq!(inside(s, ONLINE), [" alice", " bob", " carol"]);
    assert!(panel(s, ONLINE)[0].contains("Online (3)"));
    assert!(has(
        &inside(s, MESSAGES),
        "* connected to node tui1 as alice (guest)"
    ));

    enter(s, &mut client, "/join general").await;
    pump(s, &mut client, |s| highlighted(s, "#general")).await;
    assert!(
        has(&panel(s, MESSAGES), "#general"),
        "the title names the room"
    );
    assert!(has(
        &inside(s, MESSAGES),
        "* joined #general (1 here: alice)"
    ));
    // The room's members first, then the others online.
    assert_eq!(
        inside(s, ONLINE),
        ["#general", " alice", "elsewhere", " bob", " carol"]
    );

    bob.join("general").await.unwrap();
    pump(s, &mut client, |s| inside(s, ONLINE)[2] == " bob").await;
    assert_eq!(
        inside(s, ONLINE),
        ["#general", " alice", " bob", "elsewhere", " carol"]
    );
    bob.say(switchboard_client::Target::Room("general"), "hello alice")
        .await
        .unwrap();
    pump(s, &mut client, |s| has(&inside(s, MESSAGES), "hello alice")).await;
    assert!(has(&inside(s, MESSAGES), "[#general] bob: hello alice"));

    // Someone new shows at once from the room's presence; gone once they leave the service.
    let (mut dave, _) = Client::connect_as(&node.url, "dave", None).await.unwrap();
    dave.join("general").await.unwrap();
    pump(s, &mut client, |s| has(&inside(s, ONLINE), " dave")).await;
    assert!(panel(s, ONLINE)[0].contains("Online (4)"));
    dave.bye().await.unwrap();
    pump(s, &mut client, |s| !has(&inside(s, ONLINE), " dave")).await;
    assert_eq!(
        inside(s, ONLINE),
        ["#general", " alice", " bob", "elsewhere", " carol"]
    );

    // A conversation opened with a command becomes current and highlighted.
    enter(s, &mut client, "/msg carol hi carol").await;
    pump(s, &mut client, |s| has(&inside(s, MESSAGES), "hi carol")).await;
    assert!(has(&inside(s, MESSAGES), "[@carol] alice: hi carol"));
    assert!(
        !has(&inside(s, MESSAGES), "hello alice"),
        "only @carol's lines"
    );
    assert!(highlighted(s, "@carol") && !highlighted(s, "#general"));
    assert_eq!(inside(s, CONVERSATIONS), ["#general", "@carol"]);
    // Not in a room: everyone online, in one list.
    assert_eq!(inside(s, ONLINE), [" alice", " bob", " carol"]);

    // Tab goes back to the room, with its lines.
    assert_eq!(on_key(s, &mut client, key(KeyCode::Tab)).await, None);
    assert!(highlighted(s, "#general") && !highlighted(s, "@carol"));
    assert!(has(&inside(s, MESSAGES), "[#general] bob: hello alice"));

    // What is typed shows on the input line until Enter.
    for c in "draftx".chars() {
        on_key(s, &mut client, key(KeyCode::Char(c))).await;
    }
    on_key(s, &mut client, key(KeyCode::Backspace)).await;
    assert_eq!(input_line(s), "draft");
    for _ in 0..5 {
        on_key(s, &mut client, key(KeyCode::Backspace)).await;
    }
    assert_eq!(input_line(s), "");

    // The slash commands work here as in plain mode.
    enter(s, &mut client, "/help").await;
    // The newest rows show: the end of the help text.
    assert!(has(&inside(s, MESSAGES), "/quit                 leave"));
    enter(s, &mut client, "/who").await;
    pump(s, &mut client, |s| {
        has(&inside(s, MESSAGES), "* online (3)")
    })
    .await;
    assert!(has(&inside(s, MESSAGES), "* online (3): alice, bob, carol"));
    enter(s, &mut client, "/leave").await;
    pump(s, &mut client, |s| {
        !has(&inside(s, CONVERSATIONS), "#general")
    })
    .await;
    assert!(
        highlighted(s, "@carol"),
        "the remaining conversation is current"
    );
    assert!(has(&inside(s, MESSAGES), "* left #general"));
    enter(s, &mut client, "/frobnicate").await;
    assert!(has(&inside(s, MESSAGES), "! unknown command /frobnicate"));
    assert_eq!(on_key(s, &mut client, key(KeyCode::Esc)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_online_list_marks_who_is_away_and_ignores_its_own_replies() {
    let node = start_node().await;
    let (mut carol, _) = Client::connect_as(&node.url, "carol", None).await.unwrap();
    let (mut client, mut screen) = open(&args(&node, "alice")).await.unwrap();
    let s = &mut screen;
    pump(s, &mut client, |s| inside(s, ONLINE).len() == 2).await;
    let before = inside(s, MESSAGES);
    carol
        .request(ClientMsg::Away {
            message: Some("lunch".into()),
            reff: None,
        })
        .await
        .unwrap();
    // carol shares no room with alice: no event comes; the next refresh shows it.
    s.want_refresh();
    pump(s, &mut client, |s| has(&inside(s, ONLINE), "carol (away)")).await;
    assert_eq!(inside(s, ONLINE), [" alice", " carol (away)"]);
    // The screen's own refreshes print nothing in the conversation.
    assert_eq!(inside(s, MESSAGES), before);
}

#[test]
fn long_lines_wrap_at_spaces_and_long_words_break() {
    use super::screen::wrap;
    assert_eq!(wrap("hello big world", 9), ["hello big ", "world"]);
    assert_eq!(wrap("abcdefghij xy", 4), ["abcd", "efgh", "ij ", "xy"]);
    assert_eq!(wrap("", 4), [""]);
}
