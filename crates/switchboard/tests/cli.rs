//! The binary end to end: `switchboard serve` as a real process, the console client in plain
//! mode driven through stdin and stdout, SIGTERM's notice, and SIGKILL losing nothing that
//! was acknowledged.

mod common;

use common::*;
use std::process::Command;
use switchboard_client::{Client, Target};
use switchboard_proto::{ClientMsg, Cursor, ServerMsg};

#[test]
fn help_lists_the_subcommands() {
    help_shows(&[], &["serve", "chat"]);
    help_shows(
        &["serve"],
        &[
            "--listen",
            "--data-dir",
            "--node-name",
            "SWITCHBOARD_LISTEN",
        ],
    );
}

#[test]
fn two_console_clients_chat_in_a_room_and_privately() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let mut alice = Console::start(&node, "alice", &[]);
    let mut bob = Console::start(&node, "bob", &[]);
    alice.say("/join general");
    alice.expect("* joined #general");
    bob.say("/join #general");
    bob.expect("* joined #general (2 here: alice, bob)");
    alice.expect("* bob joined #general");
    alice.say("hello bob");
    bob.expect("[#general] alice: hello bob");
    alice.expect("[#general] alice: hello bob");
    bob.say("/msg alice just between us");
    alice.expect("[@bob] bob: just between us");
    alice.say("/msg nobody hi");
    alice.expect("! not_found: no user named nobody");
    alice.say("/whois bob");
    alice.expect("* bob is online (guest) in #general");
    alice.say("/who");
    alice.expect("* online (2): alice, bob");
    alice.say("/rooms");
    alice.expect("*   #general (2 online)");
    alice.say("/frobnicate");
    alice.expect("! unknown command /frobnicate");
    bob.say("/quit");
    assert_eq!(bob.finish(), 0);
    alice.expect("* bob left #general");
    // Someone arriving later reads what was said before.
    let mut carol = Console::start(&node, "carol", &[]);
    carol.say("/join general");
    carol.expect("* joined #general (2 here: alice, carol)");
    carol.say("/history 5");
    carol.expect("* history of #general: 1 message(s)");
    carol.expect("[#general] alice: hello bob");
    assert_eq!(carol.finish(), 0);
    assert_eq!(alice.finish(), 0);
}

#[test]
fn history_survives_a_restart_and_sigterm_tells_clients_why() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let mut a = Console::start(&node, "writer", &["--password", "pw"]);
    a.say("/join notes");
    a.expect("* joined #notes");
    a.say("remember this");
    a.expect("[#notes] writer: remember this");
    node.signal("-TERM");
    let (code, lines) = a.wait_exit();
    assert_eq!(code, 0, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "* the server is shutting down: the node was asked to stop (SIGTERM)"),
        "{lines:#?}"
    );
    drop(node);
    let node = Node::start(dir.path());
    let mut b = Console::start(&node, "writer", &["--password", "pw"]);
    b.say("/join notes");
    b.expect("* joined #notes");
    b.say("/history");
    b.expect("[#notes] writer: remember this");
}

#[test]
fn a_reconnecting_client_catches_up_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let addr = node.addr.clone();
    let mut r = Console::start(&node, "reader", &["--reconnect"]);
    r.say("/join news");
    r.expect("* joined #news");
    let mut w = Console::start(&node, "writer", &[]);
    w.say("/join news");
    w.expect("* joined #news");
    w.say("before the restart");
    r.expect("[#news] writer: before the restart");
    node.signal("-TERM");
    r.expect("* the server is shutting down");
    assert_eq!(w.wait_exit().0, 0);
    drop(node);
    let node = Node::start_at(dir.path(), &addr);
    let mut w = Console::start(&node, "writer", &[]);
    w.say("/join news");
    w.expect("* joined #news");
    w.say("while you were reconnecting");
    w.expect("[#news] writer: while you were reconnecting");
    r.expect("[#news] writer: while you were reconnecting");
    w.say("after it");
    r.expect("[#news] writer: after it");
    for text in [
        "before the restart",
        "while you were reconnecting",
        "after it",
    ] {
        let n = r.seen.iter().filter(|l| l.ends_with(text)).count();
        assert_eq!(n, 1, "{text:?} shown {n} times: {:#?}", r.seen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_acknowledgements_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with(
        dir.path(),
        "127.0.0.1:0",
        &["--rate", "100000", "--burst", "100000"],
    );
    let (mut c, _) = Client::connect_as(&node.url(), "durable", None)
        .await
        .unwrap();
    c.join("ledger").await.unwrap();
    // Pipeline many sends; kill the node the moment enough acknowledgements are in.
    for i in 0..2_000 {
        let msg = ClientMsg::Send {
            room: Some("ledger".into()),
            to: None,
            text: format!("entry {i}"),
            reff: Some(format!("{i}")),
        };
        c.send(&msg).await.unwrap();
    }
    let mut acked = Vec::new();
    while acked.len() < 300 {
        match c.recv().await.unwrap() {
            Some(ServerMsg::Ack { id, .. }) => acked.push(id),
            Some(_) => {}
            None => panic!("closed early"),
        }
    }
    let mut node = node;
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    // Anything else acknowledged before the kill landed counts too.
    while let Ok(Some(m)) = c.recv().await {
        if let ServerMsg::Ack { id, .. } = m {
            acked.push(id);
        }
    }
    drop(node);
    let node = Node::start(dir.path());
    let (mut c, _) = Client::connect_as(&node.url(), "checker", None)
        .await
        .unwrap();
    let everything = Cursor::from([("cli1".to_string(), u64::MAX)]);
    let stored = c
        .catch_up(Target::Room("ledger"), &Cursor::new(), &everything)
        .await
        .unwrap();
    let stored_ids: std::collections::HashSet<&str> =
        stored.iter().map(|m| m.id.as_str()).collect();
    for id in &acked {
        assert!(
            stored_ids.contains(id.as_str()),
            "acknowledged message {id} was lost"
        );
    }
    assert!(stored.len() >= acked.len());
    // Stored in order and intact: a prefix of what was sent, without holes.
    for (i, m) in stored.iter().enumerate() {
        assert_eq!(m.text, format!("entry {i}"), "stored in order, intact");
    }
}

#[test]
fn contacts_from_the_command_line_and_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args([
                "contacts",
                "--server",
                &node.url(),
                "--name",
                "dora",
                "--password",
                "pw",
            ])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    assert_eq!(run(&["set", "Juan", "+55 85 9999"]).0, Some(0));
    assert_eq!(run(&["set", "Ana Maria", "222"]).0, Some(0));
    let (code, out, _) = run(&["list"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, "Ana Maria\t222\nJuan\t+55 85 9999\n");
    let (code, _, err) = run(&["set", "Juan", "not a number"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad_request"), "{err}");
    assert_eq!(run(&["delete", "Juan"]).0, Some(0));
    // The console sees the same book.
    let mut c = Console::start(&node, "dora", &["--password", "pw"]);
    c.say("/contacts");
    c.expect("* 1 contact(s):");
    c.expect("*   Ana Maria: 222");
    c.say("/contact set \"Bea\" 333");
    c.expect("* contact Bea: 333");
    c.say("/contact del Bea");
    c.expect("* contact Bea deleted");
    assert_eq!(c.finish(), 0);
}

/// Runs `switchboard contacts` with these arguments; returns (exit code, stdout, stderr).
fn contacts_cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("contacts")
        .args(args)
        .env_remove("SWITCHBOARD_SERVER")
        .env_remove("SWITCHBOARD_NAME")
        .env_remove("SWITCHBOARD_PASSWORD")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn contacts_flags_go_before_or_after_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let url = node.url();
    let login = [
        "--server",
        url.as_str(),
        "--name",
        "fred",
        "--password",
        "pw",
    ];
    // As the issue writes it: the action first, then the flags.
    let after = |action: &[&str]| contacts_cli(&[action, &login[..]].concat());
    let before = |action: &[&str]| contacts_cli(&[&login[..], action].concat());
    let (code, out, err) = after(&["set", "Juan", "111"]);
    assert_eq!((code, out.as_str()), (Some(0), "Juan\t111\n"), "{err}");
    let (code, out, err) = before(&["set", "Ana", "222"]);
    assert_eq!((code, out.as_str()), (Some(0), "Ana\t222\n"), "{err}");
    // Flags split around the action work too.
    let (code, out, err) = contacts_cli(&[
        "--server",
        &url,
        "list",
        "--name",
        "fred",
        "--password",
        "pw",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "Ana\t222\nJuan\t111\n");
    assert_eq!(after(&["delete", "Juan"]).1, "deleted Juan\n");
    assert_eq!(before(&["list"]).1, "Ana\t222\n");
    // Contact books are for registered names: without a password the command says so and
    // changes nothing; the same goes for a missing name.
    let (code, out, err) = contacts_cli(&["set", "Bea", "333", "--server", &url, "--name", "fred"]);
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert!(
        err.contains("--password") && err.contains("registered"),
        "{err}"
    );
    let (code, _, err) = contacts_cli(&["list", "--server", &url, "--password", "pw"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--name"), "{err}");
    assert_eq!(after(&["list"]).1, "Ana\t222\n", "nothing was stored");
}

#[test]
fn contacts_show_who_is_online_in_the_cli_and_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let url = node.url();
    let list = || {
        let (code, out, err) = contacts_cli(&[
            "list",
            "--server",
            &url,
            "--name",
            "gina",
            "--password",
            "pw",
        ]);
        assert_eq!(code, Some(0), "{err}");
        out
    };
    let login = [
        "--server",
        url.as_str(),
        "--name",
        "gina",
        "--password",
        "pw",
    ];
    assert_eq!(
        contacts_cli(&[&login[..], &["set", "hugo", "123"]].concat()).0,
        Some(0)
    );
    assert_eq!(
        contacts_cli(&[&login[..], &["set", "Juan", "456"]].concat()).0,
        Some(0)
    );
    let mut gina = Console::start(&node, "gina", &["--password", "pw"]);
    // Nobody named hugo is signed in: no mark.
    assert_eq!(list(), "Juan\t456\nhugo\t123\n");
    gina.say("/contacts");
    assert_eq!(gina.expect("*   hugo:"), "*   hugo: 123");
    // hugo signs in: both the CLI and the console mark him online, and only him.
    let hugo = Console::start(&node, "hugo", &[]);
    assert_eq!(list(), "Juan\t456\nhugo\t123\tonline\n");
    gina.seen.clear();
    gina.say("/contacts");
    assert_eq!(gina.expect("*   hugo:"), "*   hugo: 123 (online)");
    assert_eq!(gina.expect("*   Juan:"), "*   Juan: 456");
    // hugo leaves: the mark goes (the session's end reaches the directory a moment later).
    assert_eq!(hugo.finish(), 0);
    let deadline = std::time::Instant::now() + WAIT;
    while list() != "Juan\t456\nhugo\t123\n" {
        assert!(std::time::Instant::now() < deadline, "hugo stays online");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    gina.seen.clear();
    gina.say("/contacts");
    assert_eq!(gina.expect("*   hugo:"), "*   hugo: 123");
    assert_eq!(gina.finish(), 0);
}
