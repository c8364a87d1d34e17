//! A partition between three `switchboard serve` processes: every peer link goes through a
//! fault-injecting proxy (common/proxy.rs) that cuts {n1} off from {n2, n3} both ways while
//! n2 and n3 stay linked. Users chat on both sides, the same guest name is taken on both
//! sides, then the partition heals.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::mesh::{cluster_json, mesh_node, sees, wait_until, SecretBy};
use common::proxy::PeerProxy;
use common::*;
use switchboard_client::{Client, Target};
use switchboard_proto::server::ChatMessage;
use switchboard_proto::ServerMsg;

const ROOM: &str = "talks";

/// A typed client that keeps every chat message it is sent, in arrival order.
struct User {
    client: Client,
    got: Vec<ChatMessage>,
}

impl User {
    async fn connect(node: &Node, name: &str) -> User {
        let (client, _) = Client::connect_as(&node.url(), name, None).await.unwrap();
        User {
            client,
            got: Vec::new(),
        }
    }

    /// Says `text` in the room; returns the acknowledged id.
    async fn say(&mut self, text: &str) -> String {
        let (id, _) = self.client.say(Target::Room(ROOM), text).await.unwrap();
        id
    }

    /// Reads what arrives until a message with `text` has (or panics after [`WAIT`]).
    async fn until_got(&mut self, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.got.iter().any(|m| m.text == text) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.client.recv_timeout(left).await {
                Ok(Some(ServerMsg::Message(m))) => self.got.push(m),
                Ok(Some(_)) => {}
                other => panic!("waiting for {text:?}: {other:?}; got {:?}", self.texts()),
            }
        }
    }

    fn texts(&self) -> Vec<&str> {
        self.got.iter().map(|m| m.text.as_str()).collect()
    }
}

/// The room's whole history as read by a newcomer on `node`.
async fn history_on(node: &Node, reader: &str) -> Vec<ChatMessage> {
    let mut r = User::connect(node, reader).await;
    r.client.join(ROOM).await.unwrap();
    let (page, more) = r
        .client
        .history(Target::Room(ROOM), None, None, 200)
        .await
        .unwrap();
    assert!(!more, "the test sends fewer than 200 messages");
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_node_processes_heals_into_one_history_and_one_owner_per_name() {
    let ports = [free_port(), free_port(), free_port()];
    let proxies: Vec<PeerProxy> = ports
        .iter()
        .map(|p| PeerProxy::start(format!("127.0.0.1:{p}").parse().unwrap()))
        .collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Each node advertises its proxy and is given another's: no link bypasses the proxies.
    // n3 reads the cluster secret from the environment (SWITCHBOARD_CLUSTER_SECRET).
    let start = |i: usize, seed: Option<usize>, secret| {
        let advertise = proxies[i].url();
        let mut extra = vec!["--advertise", advertise.as_str()];
        let seed = seed.map(|s| proxies[s].url());
        if let Some(s) = &seed {
            extra.extend(["--peer", s.as_str()]);
        }
        let name = format!("n{}", i + 1);
        mesh_node(dirs[i].path(), &name, ports[i], secret, &extra)
    };
    let n1 = start(0, None, SecretBy::Flag);
    let n2 = start(1, Some(0), SecretBy::Flag);
    let n3 = start(2, Some(1), SecretBy::Env);
    let addrs: Vec<String> = [&n1, &n2, &n3].iter().map(|n| n.addr.clone()).collect();
    let all_up = |i: usize| {
        let others: Vec<(String, &str)> = (0..3)
            .filter(|j| *j != i)
            .map(|j| (format!("n{}", j + 1), "up"))
            .collect();
        let want: Vec<(&str, &str)> = others.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        sees(&addrs[i], &want).then_some(())
    };
    for i in 0..3 {
        wait_until(&format!("n{} links to both others", i + 1), || all_up(i));
    }
    // Every member is known by its proxy's address, so every link runs through a proxy.
    for (i, addr) in addrs.iter().enumerate() {
        for p in cluster_json(addr)["peers"].as_array().unwrap() {
            let j: usize = p["node"].as_str().unwrap()[1..].parse().unwrap();
            assert_eq!(p["url"], proxies[j - 1].url(), "as n{} sees it: {p}", i + 1);
        }
    }

    let mut amy = User::connect(&n1, "amy").await;
    let mut ben = User::connect(&n2, "ben").await;
    let mut cat = User::connect(&n3, "cat").await;
    let mut acked = BTreeSet::new();
    for u in [&mut amy, &mut ben, &mut cat] {
        u.client.join(ROOM).await.unwrap();
    }
    acked.insert(amy.say("before").await);
    ben.until_got("before").await;
    cat.until_got("before").await;

    // The partition: n1's proxy holds n2's and n3's links, theirs hold n1's.
    proxies[0].cut(&["n2", "n3"]);
    proxies[1].cut(&["n1"]);
    proxies[2].cut(&["n1"]);
    wait_until("n1 alone", || {
        sees(&addrs[0], &[("n2", "down"), ("n3", "down")]).then_some(())
    });
    wait_until("n2 with n3 only", || {
        sees(&addrs[1], &[("n1", "down"), ("n3", "up")]).then_some(())
    });
    wait_until("n3 with n2 only", || {
        sees(&addrs[2], &[("n1", "down"), ("n2", "up")]).then_some(())
    });

    // The same guest name on both sides: n2's first, n1's later (by wall clock).
    let mut zed_n2 = Console::start(&n2, "zed", &[]);
    std::thread::sleep(Duration::from_millis(100));
    let mut zed_n1 = Console::start(&n1, "zed", &[]);
    zed_n1.expect("* connected to node n1 as zed (guest)");
    zed_n2.expect("* connected to node n2 as zed (guest)");

    // Both sides carry on: every message is acknowledged, and each side hears its own.
    for k in 1..=3 {
        acked.insert(amy.say(&format!("n1 cut off {k}")).await);
        acked.insert(ben.say(&format!("n2 cut off {k}")).await);
        acked.insert(cat.say(&format!("n3 cut off {k}")).await);
    }
    ben.until_got("n3 cut off 3").await;
    cat.until_got("n2 cut off 3").await;
    amy.until_got("n1 cut off 3").await;
    assert!(
        !amy.texts()
            .iter()
            .any(|t| t.starts_with("n2") || t.starts_with("n3")),
        "n1 heard the other side through the partition: {:?}",
        amy.texts()
    );

    // Heal: links come back through the proxies and everyone catches up.
    for p in &proxies {
        p.heal();
    }
    for i in 0..3 {
        wait_until(&format!("n{} relinked", i + 1), || all_up(i));
    }
    // Each side's users get the other side's messages live, once each.
    amy.until_got("n2 cut off 3").await;
    amy.until_got("n3 cut off 3").await;
    ben.until_got("n1 cut off 3").await;
    cat.until_got("n1 cut off 3").await;

    // One history on every node: the same messages in the same order, every acknowledged
    // one exactly once, in (Lamport, origin) order.
    let mut histories = Vec::new();
    for (i, node) in [&n1, &n2, &n3].into_iter().enumerate() {
        histories.push(history_on(node, &format!("reader{}", i + 1)).await);
    }
    let ids = |h: &[ChatMessage]| h.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&histories[0]), ids(&histories[1]), "n1 and n2 differ");
    assert_eq!(ids(&histories[0]), ids(&histories[2]), "n1 and n3 differ");
    let history = &histories[0];
    let unique: BTreeSet<String> = ids(history).into_iter().collect();
    assert_eq!(unique.len(), history.len(), "a message twice: {history:?}");
    assert_eq!(unique, acked, "history holds exactly what was acknowledged");
    assert!(
        history
            .windows(2)
            .all(|w| (w[0].lamport, &w[0].origin) < (w[1].lamport, &w[1].origin)),
        "not in (Lamport, origin) order: {history:?}"
    );
    // Live, nobody got a message twice, and everyone got all of them.
    for u in [&amy, &ben, &cat] {
        let live: Vec<String> = ids(&u.got);
        let set: BTreeSet<String> = live.iter().cloned().collect();
        assert_eq!(
            set.len(),
            live.len(),
            "a message twice live: {:?}",
            u.texts()
        );
        assert_eq!(set, acked, "live: {:?}", u.texts());
    }

    // The guest name goes to its first taker (n2's); the other is told and disconnected.
    let (code, lines) = zed_n1.wait_exit();
    assert!(
        lines.iter().any(|l| l.starts_with("! name_in_use")),
        "exit {code}: {lines:#?}"
    );
    zed_n2.say(&format!("/join {ROOM}"));
    zed_n2.expect(&format!("* joined #{ROOM}"));
    zed_n2.say("I kept my name");
    amy.until_got("I kept my name").await;
    let kept = amy.got.last().unwrap();
    assert_eq!((kept.from.as_str(), kept.origin.as_str()), ("zed", "n2"));
    drop((n1, n2, n3));
}
