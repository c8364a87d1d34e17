//! Clusters of real `switchboard serve` processes on loopback: seed 001's two servers in
//! either start order, three nodes with console clients, a node killed and brought back, a
//! node frozen (SIGSTOP: silent but connected, as behind a partition) and thawed, and a
//! console client failing over to another node.

mod common;

use common::seed001::Seed001;
use common::*;

const SECRET: &str = "cluster-test-secret-0123";

fn node(dir: &std::path::Path, name: &str, port: u16, peers: &[u16]) -> Node {
    node_with(dir, name, port, peers, &[])
}

/// A node of the test cluster (fast heartbeats), with extra flags.
fn node_with(dir: &std::path::Path, name: &str, port: u16, peers: &[u16], extra: &[&str]) -> Node {
    let listen = format!("127.0.0.1:{port}");
    let mut args: Vec<String> = [
        "--node-name",
        name,
        "--cluster-secret",
        SECRET,
        "--heartbeat-ms",
        "100",
        "--peer-timeout-ms",
        "800",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    for p in peers {
        args.push("--peer".into());
        args.push(format!("ws://127.0.0.1:{p}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::start_with_name(dir, &listen, &args)
}

/// Waits until a console line appears, polling `/who` on the way (the directory spreads
/// asynchronously).
fn until_online(c: &mut Console, who: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    let mut mark = c.mark();
    loop {
        c.say("/who");
        let line = c.expect_after(&mut mark, "* online (");
        if line.contains(who) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{who} never online: {line}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn seed_001_two_servers_in_either_start_order_and_either_restarts() {
    seed_001_pair(StartFirst::B);
    seed_001_pair(StartFirst::A);
}

/// Which of seed 001's two servers starts first (B is the one given `--peer A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartFirst {
    A,
    B,
}

/// Seed 001's scenario with real processes: A and B linked, a console user on A and a seed
/// 001 client (its own wire: text frames at `/ws`) on B; then A restarts, then B restarts,
/// and the lobby carries every message across each time.
fn seed_001_pair(first: StartFirst) {
    let (pa, pb) = (free_port(), free_port());
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start_a = || node(da.path(), "A", pa, &[]);
    let start_b = || node(db.path(), "B", pb, &[pa]);
    let (a, b) = match first {
        // B first: it dials A, which is not up yet, until A answers.
        StartFirst::B => {
            let b = start_b();
            (start_a(), b)
        }
        StartFirst::A => {
            let a = start_a();
            (a, start_b())
        }
    };
    let mut alice = Console::start(&a, "alice", &[]);
    alice.say("/join lobby");
    alice.expect("* joined #lobby");
    let mut bob = Seed001::connect(&b.addr, "bob");
    let mut mark = alice.mark();
    // The lobby spans the nodes once they are linked: what A's user says reaches B's.
    until_heard(&mut alice, &mut bob, "hello from A");
    bob.send("hello from B");
    alice.expect_after(&mut mark, "[#lobby] bob: hello from B");

    // A restarts: B relinks and the conversation carries on.
    drop(alice);
    drop(a);
    let a = start_a();
    let mut alice = Console::start(&a, "alice", &[]);
    alice.say("/join lobby");
    alice.expect("* joined #lobby");
    let mut mark = alice.mark();
    until_heard(&mut alice, &mut bob, "A is back");
    bob.send("still here");
    alice.expect_after(&mut mark, "[#lobby] bob: still here");
    alice.say("/history");
    alice.expect_after(&mut mark, "[#lobby] bob: hello from B");

    // B restarts: its seed 001 client reconnects to it, and A's user still reaches it.
    drop(bob);
    drop(b);
    let b = start_b();
    let mut bob = Seed001::connect(&b.addr, "bob");
    until_heard(&mut alice, &mut bob, "B is back");
    bob.send("back on B");
    alice.expect_after(&mut mark, "[#lobby] bob: back on B");
    drop((a, b));
}

/// Has `alice` say `text` (numbered, again every second) until the seed 001 client hears
/// one: after a start or a restart the link comes up on its own time.
fn until_heard(alice: &mut Console, bob: &mut Seed001, text: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    for k in 1.. {
        let line = format!("{text} ({k})");
        alice.say(&line);
        if bob.try_expect(&format!("alice: {line}"), std::time::Duration::from_secs(1)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{text:?} never crossed to B: {:#?}",
            bob.seen
        );
    }
}

#[test]
fn three_nodes_chat_lose_a_node_and_a_client_fails_over() {
    let ports = [free_port(), free_port(), free_port()];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = node(dirs[0].path(), "n1", ports[0], &[]);
    let n2 = node(dirs[1].path(), "n2", ports[1], &[ports[0]]);
    let n3 = node(dirs[2].path(), "n3", ports[2], &[ports[1]]);
    let all: Vec<String> = ports
        .iter()
        .map(|p| format!("ws://127.0.0.1:{p}"))
        .collect();
    let list = all.join(",");
    // Carol lists all three servers and starts on n1.
    let mut carol = Console::start(&n1, "carol", &["--server", &list, "--password", "pw"]);
    let mut dave = Console::start(&n3, "dave", &[]);
    until_online(&mut carol, "dave");
    carol.say("/msg dave hi dave, from n1");
    dave.expect("[@carol] carol: hi dave, from n1");
    carol.say("/join ops");
    dave.say("/join ops");
    carol.expect("* joined #ops");
    dave.expect("* joined #ops");
    carol.say("before the crash");
    dave.expect("[#ops] carol: before the crash");
    // n1 dies: carol moves to another node, resumes, and carries on.
    let mut n1 = n1;
    let mut mark = carol.mark();
    n1.child.kill().unwrap();
    carol.expect_after(&mut mark, "* reconnecting to ws://127.0.0.1:");
    let moved = carol.expect_after(&mut mark, "* connected to node n");
    assert!(
        moved.starts_with("* connected to node n2 ")
            || moved.starts_with("* connected to node n3 "),
        "{moved}"
    );
    carol.say("after the crash");
    dave.expect("[#ops] carol: after the crash");
    // n1 comes back and catches up: its history has both messages.
    drop(n1);
    let n1 = node(dirs[0].path(), "n1", ports[0], &[]);
    let deadline = std::time::Instant::now() + WAIT;
    for k in 0.. {
        // A newcomer on n1 reads the room's history.
        let mut erin = Console::start(&n1, &format!("erin{k}"), &[]);
        erin.say("/join ops");
        erin.expect("* joined #ops");
        erin.say("/history 10");
        let header = erin.expect("* history of #ops");
        if header.contains(": 2 message(s)") {
            erin.expect("[#ops] carol: before the crash");
            erin.expect("[#ops] carol: after the crash");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "n1 never caught up: {header}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop((n2, n3));
}

#[test]
fn a_frozen_node_is_declared_down_then_catches_up_when_it_thaws() {
    let ports = [free_port(), free_port(), free_port()];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = node(dirs[0].path(), "n1", ports[0], &[]);
    let n2 = node(dirs[1].path(), "n2", ports[1], &[ports[0]]);
    let n3 = node(dirs[2].path(), "n3", ports[2], &[ports[0]]);
    let mut a = Console::start(&n1, "amy", &[]);
    let mut b = Console::start(&n2, "ben", &[]);
    let mut c = Console::start(&n3, "cat", &[]);
    for x in [&mut a, &mut b, &mut c] {
        x.say("/join room");
        x.expect("* joined #room");
    }
    until_online(&mut a, "cat");
    // n3 goes silent without closing anything: its peers must notice on their own.
    let mut mark = a.mark();
    n3.signal("-STOP");
    a.expect_after(&mut mark, "* cat left #room");
    a.say("while n3 was away");
    b.expect("[#room] amy: while n3 was away");
    n3.signal("-CONT");
    // n3 relinks and catches up: cat, still connected to n3, gets the message.
    c.expect("[#room] amy: while n3 was away");
    // cat joined before the freeze too: only a join after the departure counts.
    a.expect_after(&mut mark, "* cat joined #room");
    c.say("back");
    a.expect("[#room] cat: back");
    b.expect("[#room] cat: back");
    drop((n1, n2));
}

/// A seed 000 client on a node's contacts port: handshake, then commands.
mod seed000 {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn field(v: &str, width: usize) -> Vec<u8> {
        let mut f = v.as_bytes().to_vec();
        f.resize(width, 0);
        f
    }

    pub fn connect(port: u16, user: &str) -> TcpStream {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut hello = vec![2];
        hello.extend(field(user, 256));
        s.write_all(&hello).unwrap();
        s
    }

    pub fn update(s: &mut TcpStream, name: &str, phone: &str) {
        let mut f = vec![1];
        f.extend(field(name, 256));
        f.extend(field(phone, 20));
        s.write_all(&f).unwrap();
    }

    pub fn delete(s: &mut TcpStream, name: &str) {
        let mut f = vec![2];
        f.extend(field(name, 256));
        s.write_all(&f).unwrap();
    }

    /// The contacts ports of seed 000's deployment (contact-server-1..3 on 9000, 9001 and
    /// 9002) when all three are free; otherwise (another program or test holds one) free
    /// ports, which tell the same story.
    pub fn deployment_ports() -> [u16; 3] {
        let wanted = [9000, 9001, 9002];
        let all_free = wanted
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok());
        if all_free {
            wanted
        } else {
            [super::free_port(), super::free_port(), super::free_port()]
        }
    }

    pub fn list(s: &mut TcpStream) -> Vec<(String, String)> {
        s.write_all(&[3]).unwrap();
        let mut n = [0u8; 4];
        s.read_exact(&mut n).unwrap();
        let text = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8(b[..end].to_vec()).unwrap()
        };
        (0..u32::from_be_bytes(n))
            .map(|_| {
                let mut e = vec![0u8; 276];
                s.read_exact(&mut e).unwrap();
                (text(&e[..256]), text(&e[256..]))
            })
            .collect()
    }
}

fn contact_node(
    dir: &std::path::Path,
    name: &str,
    port: u16,
    contacts: u16,
    peers: &[u16],
) -> Node {
    let contacts = format!("127.0.0.1:{contacts}");
    node_with(dir, name, port, peers, &["--contacts-listen", &contacts])
}

/// Waits until a seed 000 client's ListAll on `port` equals `want`.
fn until_listed(port: u16, user: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = seed000::list(&mut seed000::connect(port, user));
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "port {port}: {got:?}, want {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn seed_000_story_on_three_nodes() {
    let http = [free_port(), free_port(), free_port()];
    let bin = seed000::deployment_ports();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = contact_node(dirs[0].path(), "contact-server-1", http[0], bin[0], &[]);
    let n2 = contact_node(
        dirs[1].path(),
        "contact-server-2",
        http[1],
        bin[1],
        &[http[0]],
    );
    let n3 = contact_node(
        dirs[2].path(),
        "contact-server-3",
        http[2],
        bin[2],
        &[http[0]],
    );
    // A user sets contacts through node 1 and lists them through node 3.
    let mut c1 = seed000::connect(bin[0], "beloin");
    seed000::update(&mut c1, "Juan", "85999999999");
    seed000::update(&mut c1, "Ana", "85888888888");
    // Node 2 holds them too, Juan included: its later silence about Juan must come from
    // catching up the delete, not from never having heard of him.
    for port in [bin[2], bin[1]] {
        until_listed(
            port,
            "beloin",
            &[("Ana", "85888888888"), ("Juan", "85999999999")],
        );
    }
    // Node 2 is killed; more changes are made meanwhile.
    let mut n2 = n2;
    n2.child.kill().unwrap();
    n2.child.wait().unwrap();
    seed000::delete(&mut c1, "Juan");
    let mut c3 = seed000::connect(bin[2], "beloin");
    seed000::update(&mut c3, "Bea", "85777777777");
    until_listed(
        bin[0],
        "beloin",
        &[("Ana", "85888888888"), ("Bea", "85777777777")],
    );
    // Node 2 returns, catches up, and all three agree (the deleted contact stays deleted).
    drop(n2);
    let _n2 = contact_node(
        dirs[1].path(),
        "contact-server-2",
        http[1],
        bin[1],
        &[http[0]],
    );
    let all = [("Ana", "85888888888"), ("Bea", "85777777777")];
    for port in bin {
        until_listed(port, "beloin", &all);
    }
    drop((n1, n3));
}
