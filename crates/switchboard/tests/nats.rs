//! `switchboard serve --backplane`: real node processes meeting on a real nats-server
//! (Debian's package; scripts/test.sh installs it), their console clients chatting across
//! them, `cluster status` naming the backplane, and `--peer` refused beside it.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A nats-server with JetStream on a free port, killed on drop.
struct Nats {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nats-server is not installed (apt-get install -y nats-server)");
        let port = free_port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            child,
            port,
            _store: store,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(node: &Node) -> String {
    let out = Command::new(BIN)
        .args(["cluster", "status", "--server", &node.addr])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nodes_started_with_backplane_chat_through_nats() {
    let nats = Nats::start();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let url = nats.url();
    let flags = |name: &str| -> Vec<String> {
        let f = [
            "--node-name",
            name,
            "--backplane",
            &url,
            "--heartbeat-ms",
            "100",
        ];
        f.iter().map(|s| s.to_string()).collect()
    };
    let start = |dir: &std::path::Path, name: &str| {
        let args = flags(name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Node::start_with_name(dir, "127.0.0.1:0", &args)
    };
    let n1 = start(dirs[0].path(), "n1");
    let n2 = start(dirs[1].path(), "n2");
    let deadline = Instant::now() + WAIT;
    loop {
        let s = status(&n2);
        if s.contains("backplane nats")
            && s.lines()
                .any(|l| l.starts_with("n1 ") && l.contains(" up "))
        {
            break;
        }
        assert!(Instant::now() < deadline, "n2 never saw n1: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut carol = Console::start(&n1, "carol", &[]);
    carol.say("/join ops");
    carol.expect("* joined #ops");
    let mut dave = Console::start(&n2, "dave", &[]);
    dave.say("/join ops");
    dave.expect("* joined #ops");
    carol.say("hello over nats");
    dave.expect("[#ops] carol: hello over nats");
    dave.say("and back");
    carol.expect("[#ops] dave: and back");
}

#[test]
fn peer_and_backplane_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--backplane",
            "nats://127.0.0.1:4222",
            "--peer",
            "ws://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
}
