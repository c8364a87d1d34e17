//! The binary's test kit: `switchboard serve` as a real process on a port, and the console
//! client in plain mode driven through stdin and stdout.

#![allow(dead_code)]

pub mod mesh;
pub mod proxy;
pub mod seed001;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
pub const WAIT: Duration = Duration::from_secs(15);

/// The help of `switchboard ARGS --help`, which must succeed, checked to show each of
/// `shown`; returned for further checks.
pub fn help_shows(args: &[&str], shown: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    let text = String::from_utf8(out.stdout).unwrap();
    for s in shown {
        assert!(text.contains(s), "{s} missing from {text}");
    }
    text
}

/// Lines of a child's output held for the test before its reader thread waits.
const LOG_LINES: usize = 4096;

/// A `switchboard serve` process on a free port.
pub struct Node {
    pub child: Child,
    pub addr: String,
}

impl Node {
    pub fn start(dir: &Path) -> Node {
        Node::start_at(dir, "127.0.0.1:0")
    }

    pub fn start_at(dir: &Path, listen: &str) -> Node {
        Node::start_with(dir, listen, &[])
    }

    pub fn start_with(dir: &Path, listen: &str, extra: &[&str]) -> Node {
        let mut args = vec!["--node-name", "cli1"];
        args.extend_from_slice(extra);
        Node::start_with_name(dir, listen, &args)
    }

    /// Starts a node with these arguments after `serve --listen ... --data-dir ...`.
    pub fn start_with_name(dir: &Path, listen: &str, extra: &[&str]) -> Node {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir)
            .args(extra);
        Node::launch(cmd)
    }

    /// Runs `cmd` (a `serve` command line, environment and working directory as the caller
    /// set them) and waits for the address it listens on.
    pub fn launch(mut cmd: Command) -> Node {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        // Bounded like every queue here; the drain thread below keeps it moving after start.
        let (tx, rx) = std::sync::mpsc::sync_channel(LOG_LINES);
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

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn signal(&self, sig: &str) {
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
pub struct Console {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Console {
    pub fn start(node: &Node, name: &str, extra: &[&str]) -> Console {
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "--plain", "--server", &node.url(), "--name", name])
            .args(extra);
        Console::spawn(cmd)
    }

    /// Runs `cmd` with its stdin and stdout piped to the test and waits for the client's
    /// first line, "* connected to node ...".
    pub fn spawn(mut cmd: Command) -> Console {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Bounded: a test that stops reading a console stalls that console, nothing else.
        let (tx, rx) = std::sync::mpsc::sync_channel(LOG_LINES);
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

    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a line containing `needle`, among every line printed so far or a new one;
    /// returns it. To wait for something that happens later, use [`Console::mark`] and
    /// [`Console::expect_after`]: this one also matches old lines.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_after(&mut 0, needle)
    }

    /// Where the client's output stands now: lines printed from here on are after the mark.
    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// Waits for a line containing `needle` printed at or after `mark` (lines before it never
    /// match), and moves `mark` past it, so successive calls match lines in order.
    pub fn expect_after(&mut self, mark: &mut usize, needle: &str) -> String {
        let from = (*mark).min(self.seen.len());
        if let Some(i) = self.seen[from..].iter().position(|l| l.contains(needle)) {
            *mark = from + i + 1;
            return self.seen[from + i].clone();
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
                        *mark = self.seen.len();
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
    pub fn finish(mut self) -> i32 {
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
    pub fn wait_exit(mut self) -> (i32, Vec<String>) {
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

/// A free port on 127.0.0.1 (bound, then released: the caller binds it again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP proxy in front of a node, to cut a client's connection without stopping the node:
/// `cut` closes every connection through it and turns new ones away (accepted, then closed at
/// once) until `restore`.
pub struct ClientProxy {
    pub addr: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Both sockets of every connection made since the last cut, to close them at the next.
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl ClientProxy {
    pub fn start(target: &str) -> ClientProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, open2, target) = (up.clone(), open.clone(), target.to_string());
        std::thread::spawn(move || {
            for inbound in listener.incoming().map_while(Result::ok) {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(outbound) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let mut open = open2.lock().unwrap();
                open.push(inbound.try_clone().unwrap());
                open.push(outbound.try_clone().unwrap());
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            }
        });
        ClientProxy { addr, up, open }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Closes every connection through the proxy and turns new ones away.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until either side closes, then closes both.
fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = from.shutdown(std::net::Shutdown::Both);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}
