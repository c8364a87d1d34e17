//! The cluster's end-to-end scenarios, one suite run on both backplanes: the full mesh of
//! peer links and NATS with JetStream (a real nats-server started by the test). Three nodes
//! on NATS must behave exactly like three nodes on the mesh here.

mod common;

use std::path::Path;
use std::time::Duration;

use common::nats::NatsServer;
use common::*;
use switchboard_server::Config;

/// Which backplane a scenario runs on.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Mesh,
    Nats,
}

/// The nodes of one scenario and what links them.
struct Net {
    kind: Kind,
    nats: Option<NatsServer>,
    /// The mesh's first node, which later nodes are given as their peer.
    seed: Option<String>,
}

impl Net {
    async fn new(kind: Kind) -> Net {
        let nats = match kind {
            Kind::Mesh => None,
            Kind::Nats => Some(NatsServer::start().await),
        };
        Net {
            kind,
            nats,
            seed: None,
        }
    }

    /// The settings of node `name`: fast heartbeats and failure detection either way.
    fn config(&self, name: &'static str, seeds: Vec<String>) -> impl FnOnce(&mut Config) {
        let nats = self.nats.as_ref().map(NatsServer::url);
        let kind = self.kind;
        move |c: &mut Config| match kind {
            Kind::Mesh => clustered(name, seeds)(c),
            Kind::Nats => nats_node(name, nats.expect("a nats-server"))(c),
        }
    }

    async fn node(&mut self, name: &'static str) -> TestServer {
        let seeds = self.seed.iter().cloned().collect();
        let s = TestServer::start_with(self.config(name, seeds)).await;
        self.seed.get_or_insert(format!("ws://{}", s.addr));
        s
    }

    /// A node with the seed programs' gateways open (seed 002's relay listener too).
    async fn node_with_gateways(&mut self, name: &'static str) -> TestServer {
        let seeds = self.seed.iter().cloned().collect();
        let s = TestServer::start_with_contacts(self.config(name, seeds)).await;
        self.seed.get_or_insert(format!("ws://{}", s.addr));
        s
    }

    async fn node_in(&mut self, name: &'static str, dir: &Path) -> TestServer {
        let seeds = self.seed.iter().cloned().collect();
        let s = TestServer::start_in(dir, self.config(name, seeds)).await;
        self.seed.get_or_insert(format!("ws://{}", s.addr));
        s
    }

    /// Brings a node back on its address and data, told of no peer: on the mesh the others
    /// re-dial it, on NATS it finds them there.
    async fn restart(&self, name: &'static str, addr: &str, dir: &Path) -> TestServer {
        TestServer::start_at(addr, dir, self.config(name, vec![])).await
    }

    /// Two nodes that see each other up.
    async fn pair(&mut self) -> (TestServer, TestServer) {
        let a = self.node("a").await;
        let b = self.node("b").await;
        wait_view(&a, "a sees b", all_up(&["b"])).await;
        wait_view(&b, "b sees a", all_up(&["a"])).await;
        (a, b)
    }
}

/// Instantiates a scenario for both backplanes.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod mesh {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Mesh).await
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Nats).await
                }
            )*
        }
    };
}

on_both!(
    room_messages_cross_nodes_and_resume_on_the_other_node,
    a_returning_node_catches_up_and_accounts_work_everywhere,
    one_directory_across_nodes,
    concurrent_senders_on_three_nodes_are_seen_in_one_order_everywhere,
    contact_books_and_the_irc_face_span_the_nodes,
    the_seed_programs_clients_span_the_nodes,
);

/// The seed programs' clients on one node and a native user on another: seed 001's lobby
/// (a room) and seed 002's relay (messages by name).
async fn the_seed_programs_clients_span_the_nodes(kind: Kind) {
    use common::seeds::*;
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut net = Net::new(kind).await;
    let a = net.node_with_gateways("a").await;
    let b = net.node("b").await;
    wait_view(&a, "a sees b", all_up(&["b"])).await;
    let mut nia = b.client("nia").await;
    nia.join("lobby").await.unwrap();
    let mut tunde = seed001(a.addr, "tunde").await;
    tunde
        .send(Message::text("hello from seed 001"))
        .await
        .unwrap();
    let m = next_message(&mut nia).await;
    assert_eq!(
        (m.from.as_str(), m.text.as_str()),
        ("tunde", "hello from seed 001")
    );
    nia.say(switchboard_client::Target::Room("lobby"), "hi tunde")
        .await
        .unwrap();
    let mut heard = next_text(&mut tunde).await;
    if heard.starts_with("tunde:") {
        // Its own line comes back first.
        heard = next_text(&mut tunde).await;
    }
    assert_eq!(heard, "nia: hi tunde");

    // A relay client registers on a; nia, on b, writes to it by name once b has heard it is
    // online, and it answers by name.
    let relay = a.relay_addr.unwrap();
    let own = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own_addr = own.local_addr().unwrap();
    assert_eq!(
        relay_send(relay, &format!("{own_addr}$$zoe$$INIT#")).await,
        "SUCCESS\n"
    );
    let deadline = std::time::Instant::now() + WAIT;
    while nia
        .say(switchboard_client::Target::User("zoe"), "hello zoe")
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "b never heard of zoe");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(relay_inbox(&own).await, "nia$$zoe$$hello zoe#");
    assert_eq!(relay_send(relay, "zoe$$nia$$hello nia#").await, "");
    let from_zoe = nia
        .wait_for(WAIT, |m| match m {
            switchboard_proto::ServerMsg::Message(m) if m.from == "zoe" => Some(m.text.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(from_zoe, "hello nia");
}

/// Contact books replicate, and an IRC client on one node hears a native client on another.
async fn contact_books_and_the_irc_face_span_the_nodes(kind: Kind) {
    use switchboard_proto::{ClientMsg, ServerMsg};
    let mut net = Net::new(kind).await;
    let (a, b) = net.pair().await;
    let (mut carol, _) = switchboard_client::Client::connect_as(&a.url, "carol", Some("pw"))
        .await
        .unwrap();
    for (name, phone) in [("Juan", "111"), ("Ana", "222")] {
        let set = ClientMsg::ContactSet {
            name: name.into(),
            phone: phone.into(),
            reff: None,
        };
        carol.request(set).await.unwrap();
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let on_b = switchboard_client::Client::connect_as(&b.url, "carol", Some("pw")).await;
        if let Ok((mut c, _)) = on_b {
            let book = c.request(ClientMsg::Contacts { reff: None }).await;
            if let Ok(ServerMsg::Contacts { contacts, .. }) = book {
                let names: Vec<&str> = contacts.iter().map(|c| c.name.as_str()).collect();
                if names == ["Ana", "Juan"] {
                    break;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the book never reached b"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ann = a.client("ann").await;
    ann.join("lobby").await.unwrap();
    let mut irc = common::irc::IrcClient::register(b.irc_addr, "ircy").await;
    irc.send("JOIN #lobby").await;
    irc.expect("366").await;
    ann.say(switchboard_client::Target::Room("lobby"), "to irc")
        .await
        .unwrap();
    let m = irc
        .expect_where(|m| m.command == "PRIVMSG", "ann's message")
        .await;
    assert_eq!(
        (m.nick(), m.param(0), m.text()),
        ("ann", "#lobby", "to irc")
    );
}

async fn room_messages_cross_nodes_and_resume_on_the_other_node(kind: Kind) {
    let mut net = Net::new(kind).await;
    let (a, b) = net.pair().await;
    let mut ann = a.client("ann").await;
    let mut bob = b.client("bob").await;
    ann.join("lobby").await.unwrap();
    bob.join("lobby").await.unwrap();
    let (id, _) = ann
        .say(switchboard_client::Target::Room("lobby"), "hello from a")
        .await
        .unwrap();
    let m = next_message(&mut bob).await;
    assert_eq!(
        (m.id.as_str(), m.from.as_str(), m.origin.as_str()),
        (id.as_str(), "ann", "a")
    );
    bob.say(switchboard_client::Target::Room("lobby"), "hello from b")
        .await
        .unwrap();
    let got = ann
        .wait_for(WAIT, |m| match m {
            switchboard_proto::ServerMsg::Message(m) if m.origin == "b" => Some(m.text.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(got, "hello from b");
    // History is replicated: a client of b resumes on a with b's cursor, and gets exactly what
    // it missed.
    let mut cursor = switchboard_proto::Cursor::new();
    switchboard_proto::cursor::advance(&mut cursor, &m);
    let mut carl = a.client("carl").await;
    for i in 0..5 {
        ann.say(
            switchboard_client::Target::Room("lobby"),
            &format!("more {i}"),
        )
        .await
        .unwrap();
    }
    let (_, missed) = carl.resume_room("lobby", &cursor).await.unwrap();
    // What the join's cursor covered came from history; the rest arrives live.
    let mut texts: Vec<String> = missed.iter().map(|m| m.text.clone()).collect();
    while texts.len() < 6 {
        texts.push(next_message(&mut carl).await.text);
    }
    assert_eq!(
        texts,
        [
            "hello from b",
            "more 0",
            "more 1",
            "more 2",
            "more 3",
            "more 4"
        ]
    );
    let extra = carl.recv_timeout(Duration::from_millis(300)).await;
    let dup = matches!(extra, Ok(Some(switchboard_proto::ServerMsg::Message(_))));
    assert!(!dup, "nothing twice: {extra:?}");
}

async fn a_returning_node_catches_up_and_accounts_work_everywhere(kind: Kind) {
    let mut net = Net::new(kind).await;
    let a = net.node("a").await;
    let dir = tempfile::tempdir().unwrap();
    let b = net.node_in("b", dir.path()).await;
    let b_addr = b.addr.to_string();
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    b.stop("maintenance").await;
    // While b is away: an account, a room, a topic and messages, all on a.
    let (mut reg, _) = switchboard_client::Client::connect_as(&a.url, "dora", Some("pw"))
        .await
        .unwrap();
    reg.join("news").await.unwrap();
    reg.request(switchboard_proto::ClientMsg::Topic {
        room: "news".into(),
        topic: Some("while b was away".into()),
        reff: None,
    })
    .await
    .unwrap();
    for i in 0..1_200 {
        reg.send(&switchboard_proto::ClientMsg::Send {
            room: Some("news".into()),
            to: None,
            text: format!("n{i}"),
            reff: None,
        })
        .await
        .unwrap();
    }
    while next_message(&mut reg).await.text != "n1199" {}
    // b returns and catches up from a, in several batches.
    let b = net.restart("b", &b_addr, dir.path()).await;
    wait_view(&a, "b is back", all_up(&["b"])).await;
    let (mut on_b, w) = {
        let mut tries = 0;
        loop {
            match switchboard_client::Client::connect_as(&b.url, "dora", Some("pw")).await {
                Ok(ok) => break ok,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the account never reached b: {e}"),
            }
        }
    };
    assert!(w.registered);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (page, _) = on_b
            .history(switchboard_client::Target::Room("news"), None, None, 500)
            .await
            .unwrap_or_default();
        if page.last().map(|m| m.text.as_str()) == Some("n1199") && page.len() == 500 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b did not catch up: {:?}",
            page.last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match on_b
        .request(switchboard_proto::ClientMsg::Topic {
            room: "news".into(),
            topic: None,
            reff: None,
        })
        .await
        .unwrap()
    {
        switchboard_proto::ServerMsg::Topic { topic, .. } => {
            assert_eq!(topic.as_deref(), Some("while b was away"))
        }
        other => panic!("{other:?}"),
    }
    // The password is the account's everywhere.
    let wrong = switchboard_client::Client::connect_as(&b.url, "dora", Some("nope")).await;
    assert!(wrong.is_err());
}

/// Waits until `pick` accepts a message from the client.
async fn expect<T>(
    c: &mut switchboard_client::Client,
    pick: impl FnMut(&switchboard_proto::ServerMsg) -> Option<T>,
) -> T {
    c.wait_for(WAIT, pick).await.unwrap()
}

async fn one_directory_across_nodes(kind: Kind) {
    use switchboard_proto::server::PresenceEvent;
    use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};
    let mut net = Net::new(kind).await;
    let (a, b) = net.pair().await;
    let mut ann = a.client("ann").await;
    ann.join("lobby").await.unwrap();
    let mut ben = b.client("ben").await;
    // who and whois cover the cluster.
    let who = ClientMsg::Who {
        room: None,
        reff: None,
    };
    eventually(
        &mut ann,
        who,
        |m| matches!(m, ServerMsg::Who { users, .. } if users == &["ann", "ben"]),
    )
    .await;
    // A guest name held on one node is taken on every node.
    let err = switchboard_client::Client::connect_as(&a.url, "BEN", None)
        .await
        .map(|_| ());
    assert_eq!(refused(&err), ErrorCode::NameInUse, "{err:?}");
    // ben joins the room on b: ann, on a, sees him arrive, and the member lists agree.
    ben.join("lobby").await.unwrap();
    let arrived = expect(&mut ann, |m| match m {
        ServerMsg::Presence {
            name,
            event: PresenceEvent::Join,
            ..
        } => Some(name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(arrived, "ben");
    let whois = ClientMsg::Whois {
        name: "ben".into(),
        reff: None,
    };
    let reply = eventually(&mut ann, whois, |m| {
        matches!(m, ServerMsg::Whois { online: true, .. })
    })
    .await;
    assert!(matches!(reply, ServerMsg::Whois { rooms, .. } if rooms == ["lobby"]));
    let in_room = ClientMsg::Who {
        room: Some("lobby".into()),
        reff: None,
    };
    eventually(
        &mut ben,
        in_room,
        |m| matches!(m, ServerMsg::Who { users, .. } if users == &["ann", "ben"]),
    )
    .await;
    // A direct message to a guest on the other node crosses over; an unknown name does not.
    ann.say(switchboard_client::Target::User("ben"), "psst, ben")
        .await
        .unwrap();
    let got = next_message(&mut ben).await;
    assert_eq!((got.from.as_str(), got.text.as_str()), ("ann", "psst, ben"));
    let err = ann
        .say(switchboard_client::Target::User("nobody"), "hi")
        .await;
    assert!(matches!(
        err,
        Err(switchboard_client::ClientError::Refused {
            code: ErrorCode::NotFound,
            ..
        })
    ));
    // When b goes away, its users leave with it.
    b.stop("going").await;
    let left = expect(&mut ann, |m| match m {
        ServerMsg::Presence {
            name,
            event: PresenceEvent::Leave,
            ..
        } => Some(name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, "ben");
    let who = ClientMsg::Who {
        room: None,
        reff: None,
    };
    eventually(
        &mut ann,
        who,
        |m| matches!(m, ServerMsg::Who { users, .. } if users == &["ann"]),
    )
    .await;
}

async fn concurrent_senders_on_three_nodes_are_seen_in_one_order_everywhere(kind: Kind) {
    let mut net = Net::new(kind).await;
    let a = net.node("a").await;
    let b = net.node("b").await;
    let c = net.node("c").await;
    for s in [&a, &b, &c] {
        wait_view(s, "full mesh", |v| {
            v.len() == 2 && v.values().all(|s| s == "up")
        })
        .await;
    }
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (i, s) in [&a, &b, &c].into_iter().enumerate() {
        let mut r = s.client(&format!("reader{i}")).await;
        r.join("race").await.unwrap();
        readers.push(r);
        let mut w = s.client(&format!("writer{i}")).await;
        w.join("race").await.unwrap();
        writers.push(w);
    }
    const EACH: usize = 40;
    let mut tasks = Vec::new();
    for (i, mut w) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                let msg = switchboard_proto::ClientMsg::Send {
                    room: Some("race".into()),
                    to: None,
                    text: format!("w{i}-{n}"),
                    reff: None,
                };
                w.send(&msg).await.unwrap();
            }
            w
        }));
    }
    let mut orders = Vec::new();
    for r in &mut readers {
        let mut seen = Vec::new();
        while seen.len() < 3 * EACH {
            let m = next_message(r).await;
            seen.push(format!("{}@{}", m.id, m.lamport));
        }
        orders.push(seen);
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        orders[0], orders[1],
        "node a and node b delivered in different orders"
    );
    assert_eq!(
        orders[0], orders[2],
        "node a and node c delivered in different orders"
    );
    // And that order is the stream's order in history, on every node.
    let (page, _) = readers[2]
        .history(switchboard_client::Target::Room("race"), None, None, 500)
        .await
        .unwrap();
    let history: Vec<String> = page
        .into_iter()
        .map(|m| format!("{}@{}", m.id, m.lamport))
        .collect();
    assert_eq!(orders[0], history);
}
