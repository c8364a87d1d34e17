//! The IRC gateway through real sockets, driven by the test kit's IRC client (written from
//! the RFCs, the modern IRC documentation and the IRCv3 specifications): registration, every
//! command and numeric, IRC and native users together, bad input, IRCv3 capabilities, two
//! linked nodes, and TLS. Registration and a connection's life (PING, bad input, floods, PASS,
//! CAP and SASL) are in irc/registration.rs, CHATHISTORY and join playback in irc/history.rs.

mod common;
#[path = "irc/history.rs"]
mod history;
#[path = "irc/registration.rs"]
mod registration;

use std::time::Duration;

use common::irc::{IrcClient, Msg};
use common::*;
use switchboard_client::Target;
use switchboard_proto::{ClientMsg, ServerMsg};

/// The next message to a native client from `from` (its own come back too).
async fn next_from(
    c: &mut switchboard_client::Client,
    from: &str,
) -> switchboard_proto::ChatMessage {
    c.wait_for(WAIT, |m| match m {
        ServerMsg::Message(m) if m.from == from => Some(m.clone()),
        _ => None,
    })
    .await
    .unwrap()
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn numerics(lines: &[Msg]) -> Vec<&str> {
    lines.iter().map(|m| m.command.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_and_native_users_share_rooms_topics_and_conversations() {
    let s = TestServer::start().await;
    let mut bob = s.client("bob").await;
    bob.join("general").await.unwrap();
    bob.request(ClientMsg::Topic {
        room: "general".into(),
        topic: Some("Release day".into()),
        reff: None,
    })
    .await
    .unwrap();
    let mut alice = IrcClient::register(s.irc_addr, "alice").await;
    alice.send("JOIN #general").await;
    let join = alice.until("366").await;
    assert_eq!(join[0].raw, ":alice!alice@switchboard JOIN :#general");
    let topic = join.iter().find(|m| m.command == "332").unwrap();
    assert_eq!((topic.param(1), topic.text()), ("#general", "Release day"));
    let who_time = join.iter().find(|m| m.command == "333").unwrap();
    assert_eq!(who_time.param(2), "bob!bob@switchboard");
    let set_at: u64 = who_time.text().parse().unwrap();
    assert!(set_at.abs_diff(unix_now()) < 60, "{who_time:?}");
    let names = join.iter().find(|m| m.command == "353").unwrap();
    assert_eq!(
        (names.param(1), names.param(2), names.text()),
        ("=", "#general", "alice bob")
    );
    // Bob sees alice arrive.
    let arrived = bob
        .wait_for(WAIT, |m| match m {
            ServerMsg::Presence { name, .. } => Some(name.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(arrived, "alice");

    // A room message both ways; a multi-line native text is several PRIVMSG lines.
    alice.send("PRIVMSG #general :hi bob").await;
    let m = next_from(&mut bob, "alice").await;
    assert_eq!(
        (m.from.as_str(), m.text.as_str(), m.room.as_deref()),
        ("alice", "hi bob", Some("general"))
    );
    bob.say(Target::Room("general"), "hello alice\nhow are you?")
        .await
        .unwrap();
    let l1 = alice.expect("PRIVMSG").await;
    let l2 = alice.expect("PRIVMSG").await;
    assert_eq!(l1.raw, ":bob!bob@switchboard PRIVMSG #general :hello alice");
    assert_eq!(
        l2.raw,
        ":bob!bob@switchboard PRIVMSG #general :how are you?"
    );
    // A long native text is split to fit IRC's 512 bytes, losing nothing.
    let long = "word ".repeat(300);
    bob.say(Target::Room("general"), long.trim()).await.unwrap();
    let mut got = String::new();
    while got.len() < long.trim().len() {
        got.push_str(alice.expect("PRIVMSG").await.text());
    }
    assert_eq!(got, long.trim());
    // Privately: a PRIVMSG to a nick is a direct message, and back.
    alice.send("PRIVMSG bob :psst").await;
    let m = next_from(&mut bob, "alice").await;
    assert_eq!(
        (m.from.as_str(), m.to.as_deref(), m.text.as_str()),
        ("alice", Some("bob"), "psst")
    );
    bob.say(Target::User("alice"), "what?").await.unwrap();
    let m = alice.expect("PRIVMSG").await;
    assert_eq!(m.raw, ":bob!bob@switchboard PRIVMSG alice :what?");
    // Alice never sees her own messages without echo-message.
    let rest = alice.sync().await;
    assert!(rest.iter().all(|m| m.nick() != "alice"), "{rest:?}");

    // TOPIC from IRC: read, set (the native member sees the change), read again.
    alice.send("TOPIC #general").await;
    assert_eq!(alice.expect("332").await.text(), "Release day");
    assert_eq!(alice.expect("333").await.param(2), "bob!bob@switchboard");
    alice.send("TOPIC #general :Ship it").await;
    let changed = alice.expect("TOPIC").await;
    assert_eq!(
        changed.raw,
        ":alice!alice@switchboard TOPIC #general :Ship it"
    );
    let t = bob
        .wait_for(WAIT, |m| match m {
            ServerMsg::Topic { topic, by, .. } => Some((topic.clone(), by.clone())),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(t, (Some("Ship it".into()), Some("alice".into())));
    bob.request(ClientMsg::Topic {
        room: "general".into(),
        topic: Some("".into()),
        reff: None,
    })
    .await
    .unwrap();
    let cleared = alice.expect("TOPIC").await;
    assert_eq!((cleared.nick(), cleared.text()), ("bob", ""));
    alice.send("TOPIC #general").await;
    assert_eq!(alice.expect("331").await.param(1), "#general");

    // NAMES, LIST, WHO, WHOIS.
    alice.send("NAMES #general").await;
    let names = alice.until("366").await;
    assert_eq!(names[0].text(), "alice bob");
    bob.join("random").await.unwrap();
    alice.send("LIST").await;
    let list = alice.until("323").await;
    assert_eq!(list[0].command, "321");
    let rows: Vec<(&str, &str)> = list
        .iter()
        .filter(|m| m.command == "322")
        .map(|m| (m.param(1), m.param(2)))
        .collect();
    assert_eq!(rows, [("#general", "2"), ("#random", "1")]);
    alice.send("WHO #general").await;
    let who = alice.until("315").await;
    let rows: Vec<(&str, &str)> = who
        .iter()
        .filter(|m| m.command == "352")
        .map(|m| (m.param(5), m.param(6)))
        .collect();
    assert_eq!(rows, [("alice", "H"), ("bob", "H")]);
    alice.send("WHO bob").await;
    let who = alice.until("315").await;
    assert_eq!(who[0].param(5), "bob");
    alice.send("WHOIS bob").await;
    let whois = alice.until("318").await;
    assert_eq!(numerics(&whois), ["311", "319", "312", "318"]);
    assert_eq!(whois[1].text(), "#general #random");
    alice.send("WHOIS nobody").await;
    assert_eq!(numerics(&alice.until("318").await), ["401", "318"]);
    alice.send("ISON bob nobody Alice").await;
    assert_eq!(alice.expect("303").await.text(), "bob alice");
    alice.send("USERHOST bob").await;
    assert_eq!(alice.expect("302").await.text(), "bob=+bob@switchboard");
    alice.send("WHOWAS nobody").await;
    assert_eq!(numerics(&alice.until("369").await), ["406", "369"]);
    alice.send("MODE #general").await;
    assert_eq!(alice.expect("324").await.param(2), "+n");

    // Leaving: the PART echo; bob sees alice go.
    alice.send("PART #general :bye").await;
    assert_eq!(
        alice.expect("PART").await.raw,
        ":alice!alice@switchboard PART :#general"
    );
    let gone = bob
        .wait_for(WAIT, |m| match m {
            ServerMsg::Presence { name, event, .. } => Some((name.clone(), *event)),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(
        gone,
        (
            "alice".into(),
            switchboard_proto::server::PresenceEvent::Leave
        )
    );
    // Native arrivals and departures show as JOIN and PART.
    alice.send("JOIN #random").await;
    alice.expect("366").await;
    let mut zed = s.client("zed").await;
    zed.join("random").await.unwrap();
    assert_eq!(
        alice.expect("JOIN").await.raw,
        ":zed!zed@switchboard JOIN :#random"
    );
    drop(zed);
    assert_eq!(
        alice.expect("PART").await.raw,
        ":zed!zed@switchboard PART :#random"
    );
    // JOIN 0 leaves every channel.
    alice.send("JOIN 0").await;
    assert_eq!(alice.expect("PART").await.param(0), "#random");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn away_shows_in_whois_who_privmsg_and_away_notify() {
    let s = TestServer::start().await;
    let mut ann = IrcClient::register(s.irc_addr, "ann").await;
    let mut ben = IrcClient::connect(s.irc_addr).await;
    ben.send("CAP LS 302").await;
    ben.send("CAP REQ :away-notify").await;
    ben.send("NICK ben").await;
    ben.send("USER ben 0 * :Ben").await;
    ben.send("CAP END").await;
    ben.expect("376").await;
    for c in [&mut ann, &mut ben] {
        c.send("JOIN #cafe").await;
        c.expect("366").await;
    }
    ann.send("AWAY :out for lunch").await;
    assert_eq!(ann.expect("306").await.command, "306");
    let away = ben.expect("AWAY").await;
    assert_eq!(away.raw, ":ann!ann@switchboard AWAY :out for lunch");
    ben.send("WHOIS ann").await;
    let whois = ben.until("318").await;
    let m = whois.iter().find(|m| m.command == "301").unwrap();
    assert_eq!(m.text(), "out for lunch");
    ben.send("WHO #cafe").await;
    let who = ben.until("315").await;
    assert_eq!(who[0].param(6), "G");
    ben.send("PRIVMSG ann :are you there?").await;
    assert_eq!(ben.expect("301").await.text(), "out for lunch");
    ann.send("AWAY").await;
    ann.expect("305").await;
    assert_eq!(ben.expect("AWAY").await.raw, ":ann!ann@switchboard AWAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ircv3_tags_echo_and_chathistory() {
    let s = TestServer::start().await;
    let mut bob = s.client_pw("bob", "bobs-pw").await;
    bob.join("hist").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let (id, _) = bob
            .say(Target::Room("hist"), &format!("old {i}"))
            .await
            .unwrap();
        ids.push(id);
    }
    let mut c = IrcClient::connect(s.irc_addr).await;
    c.send("CAP LS 302").await;
    c.send("CAP REQ :server-time message-tags echo-message account-tag batch draft/chathistory multi-prefix").await;
    let ack = c
        .expect_where(|m| m.command == "CAP" && m.param(1) != "LS", "CAP ACK")
        .await;
    assert_eq!(ack.param(1), "ACK");
    c.send("NICK tess").await;
    c.send("USER tess 0 * :Tess").await;
    c.send("CAP END").await;
    c.expect("376").await;
    c.send("JOIN #hist").await;
    c.expect("366").await;

    // Live messages carry time, msgid and (registered senders) account.
    bob.say(Target::Room("hist"), "live one").await.unwrap();
    let m = c.expect("PRIVMSG").await;
    assert_eq!(m.text(), "live one");
    assert!(
        m.tags["time"].ends_with('Z') && m.tags["time"].len() == 24,
        "{m:?}"
    );
    assert!(m.tags.contains_key("msgid"), "{m:?}");
    assert_eq!(m.tags["account"], "bob");
    // echo-message: the client's own message comes back, tagged, guests without account.
    c.send("PRIVMSG #hist :mine").await;
    let echo = c.expect("PRIVMSG").await;
    assert_eq!((echo.nick(), echo.text()), ("tess", "mine"));
    assert!(echo.tags.contains_key("msgid") && !echo.tags.contains_key("account"));
    c.send("NOTICE #hist :a notice").await;
    assert_eq!(c.expect("NOTICE").await.text(), "a notice");

    // CHATHISTORY LATEST: the newest in a batch, in order.
    c.send("CHATHISTORY LATEST #hist * 3").await;
    let open = c.expect("BATCH").await;
    let id = open.param(0).strip_prefix('+').unwrap().to_string();
    assert_eq!((open.param(1), open.param(2)), ("chathistory", "#hist"));
    let page = c.until("BATCH").await;
    assert_eq!(page.last().unwrap().param(0), format!("-{id}"));
    let texts: Vec<&str> = page[..3].iter().map(|m| m.text()).collect();
    assert_eq!(texts, ["live one", "mine", "a notice"]);
    assert!(page[..3].iter().all(|m| m.tags["batch"] == id));
    // BEFORE the oldest of those, then AFTER one of the old ones.
    let first = page[0].tags["msgid"].clone();
    c.send(&format!("CHATHISTORY BEFORE #hist msgid={first} 2"))
        .await;
    c.expect("BATCH").await;
    let page = c.until("BATCH").await;
    let texts: Vec<&str> = page[..2].iter().map(|m| m.text()).collect();
    assert_eq!(texts, ["old 4", "old 5"]);
    let old4 = page[0].tags["msgid"].clone();
    c.send(&format!("CHATHISTORY AFTER #hist msgid={old4} 2"))
        .await;
    c.expect("BATCH").await;
    let page = c.until("BATCH").await;
    let texts: Vec<&str> = page[..2].iter().map(|m| m.text()).collect();
    assert_eq!(texts, ["old 5", "live one"]);
    // A conversation's history, by the other person's nick.
    bob.say(Target::User("tess"), "private word").await.unwrap();
    c.expect("PRIVMSG").await;
    c.send("CHATHISTORY LATEST bob * 10").await;
    c.expect("BATCH").await;
    let page = c.until("BATCH").await;
    assert_eq!(
        page[0].raw.split(" :bob").nth(1),
        Some("!bob@switchboard PRIVMSG tess :private word")
    );
    // Bad requests: FAIL.
    c.send("CHATHISTORY BETWEEN #hist * * 10").await;
    assert_eq!(c.expect("FAIL").await.param(1), "INVALID_PARAMS");
    c.send("CHATHISTORY BEFORE #hist msgid=nonsense 10").await;
    assert_eq!(c.expect("FAIL").await.param(1), "INVALID_PARAMS");
    c.send("CHATHISTORY LATEST #nowhere * 10").await;
    assert_eq!(c.expect("FAIL").await.param(1), "INVALID_TARGET");
    // Capabilities dropped after registration take effect on the next live message.
    c.send("CAP REQ :-server-time -account-tag").await;
    assert_eq!(c.expect("CAP").await.param(1), "ACK");
    bob.say(Target::Room("hist"), "plainer").await.unwrap();
    let m = c.expect("PRIVMSG").await;
    assert_eq!(m.text(), "plainer");
    assert!(
        m.tags.contains_key("msgid")
            && !m.tags.contains_key("time")
            && !m.tags.contains_key("account"),
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_told_before_the_close() {
    let s = TestServer::start().await;
    let mut c = IrcClient::register(s.irc_addr, "stayer").await;
    let mut unregistered = IrcClient::connect(s.irc_addr).await;
    unregistered.send("NICK pending").await;
    let stop = tokio::spawn(s.stop("maintenance window"));
    let rest = c.closed().await;
    let notice = rest.iter().find(|m| m.command == "NOTICE").unwrap();
    assert!(notice.text().contains("maintenance window"), "{rest:?}");
    assert_eq!(rest.last().unwrap().command, "ERROR");
    let rest = unregistered.closed().await;
    assert!(
        rest.last().unwrap().text().contains("shutting down"),
        "{rest:?}"
    );
    stop.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_irc_user_and_a_native_user_on_two_linked_nodes_share_a_room() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![format!("ws://{}", a.addr)])).await;
    wait_view(&a, "a links to b", |v| {
        v.get("b").map(String::as_str) == Some("up")
    })
    .await;
    let mut nina = b.client("nina").await;
    nina.join("mesh").await.unwrap();
    // The IRC user on node a sees nina of node b in the room, and her nick is taken.
    let mut ivan = IrcClient::register(a.irc_addr, "ivan").await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        ivan.send("NAMES #mesh").await;
        let names = ivan.until("366").await;
        if names[0].text() == "nina" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut copy = IrcClient::connect(a.irc_addr).await;
    copy.send("NICK nina").await;
    copy.send("USER nina 0 * :x").await;
    assert_eq!(copy.recv().await.command, "433");
    // LUSERS counts the whole network: ivan here, nina on node b.
    ivan.send("LUSERS").await;
    let lusers = ivan.expect("251").await;
    assert!(lusers.text().contains("There are 2 users"), "{lusers:?}");
    ivan.send("JOIN #mesh").await;
    let join = ivan.until("366").await;
    assert_eq!(
        join.iter().find(|m| m.command == "353").unwrap().text(),
        "ivan nina"
    );
    ivan.send("PRIVMSG #mesh :hello from IRC on a").await;
    let m = next_from(&mut nina, "ivan").await;
    assert_eq!(
        (m.from.as_str(), m.text.as_str(), m.origin.as_str()),
        ("ivan", "hello from IRC on a", "a")
    );
    nina.say(Target::Room("mesh"), "hello from the web on b")
        .await
        .unwrap();
    let m = ivan.expect("PRIVMSG").await;
    assert_eq!(
        m.raw,
        ":nina!nina@switchboard PRIVMSG #mesh :hello from the web on b"
    );
    ivan.send("PRIVMSG nina :just us").await;
    let m = next_from(&mut nina, "ivan").await;
    assert_eq!((m.from.as_str(), m.to.as_deref()), ("ivan", Some("nina")));
    nina.say(Target::User("ivan"), "indeed").await.unwrap();
    assert_eq!(
        ivan.expect("PRIVMSG").await.raw,
        ":nina!nina@switchboard PRIVMSG ivan :indeed"
    );
    ivan.send("WHOIS nina").await;
    let whois = ivan.until("318").await;
    assert_eq!(
        whois.iter().find(|m| m.command == "319").unwrap().text(),
        "#mesh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_over_tls_with_the_nodes_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).unwrap();
    let (cp, kp) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cp, cert.cert.pem()).unwrap();
    std::fs::write(&kp, cert.key_pair.serialize_pem()).unwrap();
    let s = TestServer::start_with(|c| c.tls = Some((cp.clone(), kp.clone()))).await;
    let trust = switchboard_server::tls::client_config(Some(&cp)).unwrap();
    let mut c = IrcClient::connect_tls(s.ircs_addr.unwrap(), trust).await;
    c.send("NICK secure").await;
    c.send("USER secure 0 * :Secure").await;
    c.expect("376").await;
    c.send("JOIN #vault").await;
    c.expect("366").await;
    let (mut web, _) = switchboard_client::Client::connect_as_tls(
        &format!("wss://{}/v1/ws", s.addr),
        "web",
        None,
        Some(switchboard_server::tls::client_config(Some(&cp)).unwrap()),
    )
    .await
    .unwrap();
    web.join("vault").await.unwrap();
    web.say(Target::Room("vault"), "over TLS both ways")
        .await
        .unwrap();
    assert_eq!(c.expect("PRIVMSG").await.text(), "over TLS both ways");
    c.send("PRIVMSG #vault :indeed").await;
    assert_eq!(next_from(&mut web, "secure").await.text, "indeed");
    // The plain IRC port still speaks plain text alongside.
    let mut plain = IrcClient::register(s.irc_addr, "plain").await;
    plain.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_on_irc_and_the_web_sees_what_the_other_session_sent() {
    let s = TestServer::start().await;
    let mut web = s.client_pw("sam", "sams-pw").await;
    web.join("both").await.unwrap();
    let mut irc = IrcClient::connect(s.irc_addr).await;
    irc.send("PASS sams-pw").await;
    irc.send("NICK sam").await;
    irc.send("USER sam 0 * :Sam").await;
    irc.expect("376").await;
    irc.send("JOIN #both").await;
    irc.expect("366").await;
    // Sent from IRC and from the web at the same time: the IRC client (without
    // echo-message) sees only what the web session sent, once each.
    for i in 0..5 {
        irc.send(&format!("PRIVMSG #both :from irc {i}")).await;
        web.say(Target::Room("both"), &format!("from web {i}"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let m = irc.expect("PRIVMSG").await;
        assert_eq!(m.nick(), "sam");
        seen.push(m.text().to_string());
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("from web {i}")).collect::<Vec<_>>()
    );
    let rest = irc.sync().await;
    assert!(rest.iter().all(|m| m.command != "PRIVMSG"), "{rest:?}");
    // The web session got the IRC lines too.
    let mut from_irc = 0;
    while from_irc < 5 {
        if next_from(&mut web, "sam")
            .await
            .text
            .starts_with("from irc")
        {
            from_irc += 1;
        }
    }
}
