//! History over IRC: CHATHISTORY's BETWEEN, AROUND, TARGETS and timestamp selectors, and the
//! join playback that clients without draft/chathistory get (irssi, WeeChat): with batch and
//! server-time, with the time in the text without them, none for chathistory clients, and no
//! message shown twice when messages arrive while joining.

use std::collections::BTreeSet;

use super::*;

/// Connects and registers as `nick` with these capabilities (none when empty).
async fn with_caps(addr: std::net::SocketAddr, nick: &str, caps: &str) -> IrcClient {
    let mut c = IrcClient::connect(addr).await;
    if !caps.is_empty() {
        c.send("CAP LS 302").await;
        c.send(&format!("CAP REQ :{caps}")).await;
        let ack = c
            .expect_where(|m| m.command == "CAP" && m.param(1) != "LS", "CAP ACK")
            .await;
        assert_eq!(ack.param(1), "ACK", "{ack:?}");
    }
    c.send(&format!("NICK {nick}")).await;
    c.send(&format!("USER {nick} 0 * :{nick}")).await;
    if !caps.is_empty() {
        c.send("CAP END").await;
    }
    c.expect("376").await;
    c
}

/// The next batch: its opening line and the lines inside it.
async fn batch(c: &mut IrcClient) -> (Msg, Vec<Msg>) {
    let open = c.expect("BATCH").await;
    let mut inside = c.until("BATCH").await;
    let close = inside.pop().unwrap();
    let id = open.param(0).strip_prefix('+').unwrap().to_string();
    assert_eq!(close.param(0), format!("-{id}"));
    assert!(inside.iter().all(|m| m.tags["batch"] == id), "{inside:#?}");
    (open, inside)
}

/// A CHATHISTORY request's texts, in the order of the batch.
async fn texts(c: &mut IrcClient, request: &str) -> Vec<String> {
    c.send(request).await;
    let (open, lines) = batch(c).await;
    assert_eq!(open.param(1), "chathistory", "{open:?}");
    lines.iter().map(|m| m.text().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chathistory_between_around_targets_and_timestamps() {
    let s = TestServer::start().await;
    let mut bob = s.client_pw("bob", "bobs-pw").await;
    bob.join("hist").await.unwrap();
    for i in 0..10 {
        bob.say(Target::Room("hist"), &format!("m{i}"))
            .await
            .unwrap();
        // Each message its own millisecond, so that times select exactly.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let caps = "batch server-time message-tags draft/chathistory";
    let mut c = with_caps(s.irc_addr, "tess", caps).await;
    c.send("JOIN #hist").await;
    c.expect("366").await;
    // A draft/chathistory client fetches history itself: nothing is played back.
    let after_join = c.sync().await;
    assert!(
        after_join.iter().all(|m| m.command != "PRIVMSG"),
        "{after_join:#?}"
    );
    c.send("CHATHISTORY LATEST #hist * 10").await;
    let (_, all) = batch(&mut c).await;
    let id = |i: usize| format!("msgid={}", all[i].tags["msgid"]);
    let ts = |i: usize| format!("timestamp={}", all[i].tags["time"]);
    let m = |r: std::ops::Range<usize>| r.map(|i| format!("m{i}")).collect::<Vec<_>>();
    assert_eq!(all.iter().map(|l| l.text()).collect::<Vec<_>>(), m(0..10));

    // BETWEEN: from the first reference (excluded) towards the second (excluded), either way,
    // the limit counted from the first; always oldest first.
    let between = |a: String, b: String, n: u32| format!("CHATHISTORY BETWEEN #hist {a} {b} {n}");
    assert_eq!(texts(&mut c, &between(id(1), id(6), 10)).await, m(2..6));
    assert_eq!(texts(&mut c, &between(id(1), id(6), 2)).await, m(2..4));
    assert_eq!(texts(&mut c, &between(id(6), id(1), 2)).await, m(4..6));
    assert_eq!(texts(&mut c, &between(ts(1), ts(6), 10)).await, m(2..6));
    assert_eq!(texts(&mut c, &between(ts(6), ts(1), 3)).await, m(3..6));
    // A msgid and a timestamp together, in either order.
    assert_eq!(texts(&mut c, &between(id(1), ts(6), 10)).await, m(2..6));
    assert_eq!(texts(&mut c, &between(id(6), ts(1), 10)).await, m(2..6));
    assert_eq!(texts(&mut c, &between(id(3), id(3), 10)).await, m(0..0));

    // AROUND: the message named, with what came before and after it.
    let around = |r: String, n: u32| format!("CHATHISTORY AROUND #hist {r} {n}");
    assert_eq!(texts(&mut c, &around(id(5), 4)).await, m(3..7));
    assert_eq!(texts(&mut c, &around(id(5), 1)).await, m(5..6));
    assert_eq!(texts(&mut c, &around(id(9), 4)).await, m(6..10));
    assert_eq!(texts(&mut c, &around(id(0), 3)).await, m(0..3));
    assert_eq!(texts(&mut c, &around(ts(5), 3)).await, m(4..7));

    // Timestamps with BEFORE, AFTER and LATEST too (MSGREFTYPES=msgid,timestamp).
    let before = format!("CHATHISTORY BEFORE #hist {} 2", ts(3));
    assert_eq!(texts(&mut c, &before).await, m(1..3));
    let after = format!("CHATHISTORY AFTER #hist {} 5", ts(7));
    assert_eq!(texts(&mut c, &after).await, m(8..10));
    let latest = format!("CHATHISTORY LATEST #hist {} 10", ts(7));
    assert_eq!(texts(&mut c, &latest).await, m(8..10));
    let latest = format!("CHATHISTORY LATEST #hist {} 10", id(8));
    assert_eq!(texts(&mut c, &latest).await, m(9..10));

    // TARGETS: the channels joined and the conversations, by their latest message's time.
    bob.say(Target::User("tess"), "psst").await.unwrap();
    let psst = c.expect("PRIVMSG").await;
    let targets = |a: &str, b: &str, n: u32| format!("CHATHISTORY TARGETS {a} {b} {n}");
    let (start, end) = (
        "timestamp=2000-01-01T00:00:00.000Z",
        "timestamp=2999-01-01T00:00:00.000Z",
    );
    let listed = |lines: &[Msg]| -> Vec<(String, String)> {
        lines
            .iter()
            .map(|l| {
                assert_eq!((l.command.as_str(), l.param(0)), ("CHATHISTORY", "TARGETS"));
                (l.param(1).to_string(), l.param(2).to_string())
            })
            .collect()
    };
    c.send(&targets(start, end, 10)).await;
    let (open, lines) = batch(&mut c).await;
    assert_eq!(open.param(1), "draft/chathistory-targets");
    let hist = ("#hist".to_string(), all[9].tags["time"].clone());
    let dm = ("bob".to_string(), psst.tags["time"].clone());
    assert_eq!(listed(&lines), [hist.clone(), dm.clone()]);
    // The limit counts from the first time given: the oldest, or (backwards) the newest.
    c.send(&targets(start, end, 1)).await;
    assert_eq!(listed(&batch(&mut c).await.1), [hist]);
    // The times are excluded: from m9's time on, only the conversation.
    c.send(&targets(&ts(9), end, 10)).await;
    assert_eq!(listed(&batch(&mut c).await.1), std::slice::from_ref(&dm));
    c.send(&targets(end, start, 1)).await;
    assert_eq!(listed(&batch(&mut c).await.1), [dm]);

    // Bad requests get FAIL INVALID_PARAMS, as the specification says.
    for bad in [
        "CHATHISTORY BETWEEN #hist * * 10".to_string(),
        format!("CHATHISTORY BETWEEN #hist {} 10", id(1)),
        format!("CHATHISTORY AROUND #hist {} many", id(1)),
        format!("CHATHISTORY TARGETS {} {end} 10", id(1)),
        "CHATHISTORY SOMETIME #hist * 10".to_string(),
        "CHATHISTORY AROUND #hist timestamp=yesterday 10".to_string(),
    ] {
        c.send(&bad).await;
        let fail = c.expect("FAIL").await;
        assert_eq!(
            (fail.param(0), fail.param(1)),
            ("CHATHISTORY", "INVALID_PARAMS"),
            "{bad}"
        );
    }
    c.send(&format!("CHATHISTORY AROUND #nowhere {} 10", id(1)))
        .await;
    assert_eq!(c.expect("FAIL").await.param(1), "INVALID_TARGET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_plays_back_the_latest_messages_to_clients_that_cannot_fetch_them() {
    let s = TestServer::start().await;
    let mut bob = s.client("bob").await;
    bob.join("room").await.unwrap();
    for i in 0..25 {
        bob.say(Target::Room("room"), &format!("p{i}"))
            .await
            .unwrap();
    }
    let last20: Vec<String> = (5..25).map(|i| format!("p{i}")).collect();

    // No capabilities (irssi, ii): right after the NAMES, the latest 20, each with its time
    // in front like a bouncer's playback (UTC), no batch.
    let mut plain = IrcClient::register(s.irc_addr, "plain").await;
    plain.send("JOIN #room").await;
    plain.expect("366").await;
    let lines = plain.sync().await;
    assert!(lines.iter().all(|m| m.command == "PRIVMSG"), "{lines:#?}");
    let now = unix_now();
    let hhmm = |secs: u64| format!("[{:02}:{:02}] ", secs % 86_400 / 3600, secs % 3600 / 60);
    let stamped: Vec<String> = lines
        .iter()
        .map(|m| {
            let text = m.text();
            assert!(
                text.starts_with(&hhmm(now)) || text.starts_with(&hhmm(now - 60)),
                "{text:?} at {now}"
            );
            assert_eq!((m.nick(), m.param(0)), ("bob", "#room"));
            text[8..].to_string()
        })
        .collect();
    assert_eq!(stamped, last20);

    // server-time and batch (WeeChat): the same in a chathistory batch, the time in the tag.
    let mut tagged = with_caps(s.irc_addr, "tagged", "server-time batch").await;
    tagged.send("JOIN #room").await;
    tagged.expect("366").await;
    let (open, lines) = batch(&mut tagged).await;
    assert_eq!((open.param(1), open.param(2)), ("chathistory", "#room"));
    assert!(lines.iter().all(|m| m.tags["time"].ends_with('Z')));
    let plain_texts: Vec<String> = lines.iter().map(|m| m.text().to_string()).collect();
    assert_eq!(plain_texts, last20);

    // Live messages come after the playback, once.
    bob.say(Target::Room("room"), "live").await.unwrap();
    for c in [&mut plain, &mut tagged] {
        let m = c.expect("PRIVMSG").await;
        assert_eq!(m.text(), "live");
    }
    // Joining again after a PART plays back again, now with the live one.
    plain.send("PART #room").await;
    plain.expect("PART").await;
    plain.send("JOIN #room").await;
    plain.expect("366").await;
    let again: Vec<String> = plain
        .sync()
        .await
        .iter()
        .map(|m| m.text()[8..].to_string())
        .collect();
    assert_eq!(again.len(), 20);
    assert_eq!(again.last().unwrap(), "live");

    // With draft/chathistory: nothing unasked.
    let mut modern = with_caps(s.irc_addr, "modern", "server-time batch draft/chathistory").await;
    modern.send("JOIN #room").await;
    modern.expect("366").await;
    let lines = modern.sync().await;
    assert!(lines.is_empty(), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_shown_twice_when_messages_arrive_during_the_join() {
    let s = TestServer::start().await;
    let mut bob = s.client("bob").await;
    bob.join("busy").await.unwrap();
    for i in 0..10 {
        bob.say(Target::Room("busy"), &format!("r{i}"))
            .await
            .unwrap();
    }
    let mut c = with_caps(s.irc_addr, "joiner", "message-tags server-time").await;
    // Messages keep coming while the IRC client joins.
    let talk = tokio::spawn(async move {
        for i in 10..60 {
            bob.say(Target::Room("busy"), &format!("r{i}"))
                .await
                .unwrap();
        }
        bob
    });
    c.send("JOIN #busy").await;
    let mut seen = Vec::new();
    loop {
        let m = c.expect("PRIVMSG").await;
        seen.push((m.tags["msgid"].clone(), m.text().to_string()));
        if m.text() == "r59" {
            break;
        }
    }
    let _bob = talk.await.unwrap();
    let ids: BTreeSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), seen.len(), "a message shown twice: {seen:?}");
    // Played back and live together: one run, in order, up to the last.
    let numbers: Vec<u32> = seen.iter().map(|(_, t)| t[1..].parse().unwrap()).collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..60).collect::<Vec<_>>(), "{seen:?}");
    assert!(numbers.len() >= 20, "{seen:?}");
}
