//! The binary end to end: `switchboard serve` as a real process, the console client in plain
//! mode driven through stdin and stdout, SIGTERM's notice, and SIGKILL losing nothing that
//! was acknowledged.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use switchboard_client::{Client, Target};
use switchboard_proto::{ClientMsg, Cursor, ServerMsg};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const WAIT: Duration = Duration::from_secs(15);

/// A `switchboard serve` process on a free port.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    fn start(dir: &Path) -> Node {
        Node::start_at(dir, "127.0.0.1:0")
    }

    fn start_at(dir: &Path, listen: &str) -> Node {
        Node::start_with(dir, listen, &[])
    }

    fn start_with(dir: &Path, listen: &str, extra: &[&str]) -> Node {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                listen,
                "--node-name",
                "cli1",
                "--data-dir",
            ])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            let line = rx
                .recv_timeout(deadline - Instant::now())
                .expect("node did not start");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining the log so the node never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Node { child, addr }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A console client in plain mode: lines in, lines out.
struct Console {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Console {
    fn start(node: &Node, name: &str, extra: &[&str]) -> Console {
        let mut child = Command::new(BIN)
            .args(["chat", "--plain", "--server", &node.url(), "--name", name])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        let mut c = Console {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        };
        c.expect("* connected to node");
        c
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a line containing `needle`; returns it.
    fn expect(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {needle:?}; saw {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("client exited before {needle:?}; saw {:#?}", self.seen)
                }
            }
        }
    }

    /// Closes stdin and waits for the exit code.
    fn finish(mut self) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "client did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself.
    fn wait_exit(mut self) -> (i32, Vec<String>) {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(l) = self.lines.try_recv() {
                    self.seen.push(l);
                }
                return (status.code().unwrap_or(-1), std::mem::take(&mut self.seen));
            }
            assert!(
                Instant::now() < deadline,
                "client did not exit: {:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("serve") && text.contains("chat"), "{text}");
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--data-dir",
        "--node-name",
        "SWITCHBOARD_LISTEN",
    ] {
        assert!(text.contains(flag), "{flag} missing from {text}");
    }
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
