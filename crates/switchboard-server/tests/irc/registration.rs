//! Registration and a connection's life over IRC: the welcome burst (ISUPPORT, LUSERS, MOTD),
//! PING and the idle timeout, bad input and its numerics, clients that never register or
//! flood, nick collisions, PASS for registered names, and CAP negotiation with SASL PLAIN.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_says_welcome_isupport_lusers_and_motd() {
    let s = TestServer::start().await;
    let mut c = IrcClient::connect(s.irc_addr).await;
    c.send("NICK alice").await;
    c.send("USER alice 0 * :Alice Liddell").await;
    let burst = c.until("376").await;
    let codes = numerics(&burst);
    for code in [
        "001", "002", "003", "004", "005", "251", "254", "255", "375", "372", "376",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let welcome = &burst[0];
    assert_eq!(
        (
            welcome.command.as_str(),
            welcome.param(0),
            welcome.prefix.as_deref()
        ),
        ("001", "alice", Some("t1"))
    );
    let tokens: Vec<&str> = burst
        .iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| m.params[1..m.params.len() - 1].iter().map(String::as_str))
        .collect();
    for t in [
        "CHANTYPES=#",
        "PREFIX=",
        "NICKLEN=32",
        "CHANNELLEN=65",
        "CASEMAPPING=ascii",
        "NETWORK=Switchboard",
        "CHATHISTORY=500",
        "UTF8ONLY",
    ] {
        assert!(tokens.contains(&t), "{t} missing from {tokens:?}");
    }
    let lusers = burst.iter().find(|m| m.command == "251").unwrap();
    assert!(lusers.text().contains("There are 1 users"), "{lusers:?}");

    // PING both ways: the client's is answered with its token.
    c.send("PING :are-you-there").await;
    let pong = c.expect("PONG").await;
    assert_eq!((pong.param(0), pong.text()), ("t1", "are-you-there"));
    // LUSERS and MOTD on demand.
    c.send("LUSERS").await;
    c.expect("251").await;
    c.expect("255").await;
    c.send("MOTD").await;
    c.expect("375").await;
    c.expect("376").await;
    // QUIT ends with an ERROR and a close.
    c.send("QUIT :see you").await;
    let rest = c.closed().await;
    let error = rest.last().unwrap();
    assert_eq!(error.command, "ERROR");
    assert!(error.text().contains("see you"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_an_idle_client_and_drops_one_that_never_answers() {
    let s = TestServer::start_with(|c| c.idle_timeout = Duration::from_millis(900)).await;
    let mut quiet = IrcClient::register(s.irc_addr, "sleepy").await;
    quiet.auto_pong = false;
    let ping = quiet.expect("PING").await;
    assert_eq!(ping.text(), "t1");
    let rest = quiet.closed().await;
    assert!(
        rest.last().unwrap().text().contains("ping timeout"),
        "{rest:?}"
    );
    // One that answers stays.
    let mut awake = IrcClient::register(s.irc_addr, "awake").await;
    let pings = awake.quiet(2_000).await;
    assert!(pings.is_empty(), "{pings:?}");
    awake.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_numeric_and_harms_nobody() {
    let s = TestServer::start().await;
    let mut other = IrcClient::register(s.irc_addr, "bystander").await;
    other.send("JOIN #calm").await;
    other.expect("366").await;

    let mut c = IrcClient::connect(s.irc_addr).await;
    // Before registration: 451 for commands, 461 for missing parameters, 432 for bad nicks.
    c.send("JOIN #calm").await;
    assert_eq!(c.recv().await.command, "451");
    c.send("PRIVMSG bystander :hi").await;
    assert_eq!(c.recv().await.command, "451");
    c.send("USER x").await;
    assert_eq!(c.recv().await.command, "461");
    c.send("NICK bad*nick").await;
    assert_eq!(c.recv().await.command, "432");
    c.send("NICK").await;
    assert_eq!(c.recv().await.command, "431");
    c.send("NICK fine").await;
    c.send("USER fine 0 * :Fine").await;
    c.expect("376").await;
    // Unknown commands, missing parameters, lines over 512 bytes (tags have their own room).
    c.send("FROBNICATE now").await;
    let m = c.recv().await;
    assert_eq!((m.command.as_str(), m.param(1)), ("421", "FROBNICATE"));
    c.send("JOIN").await;
    assert_eq!(c.recv().await.command, "461");
    c.send("PRIVMSG").await;
    assert_eq!(c.recv().await.command, "411");
    c.send("PRIVMSG bystander").await;
    assert_eq!(c.recv().await.command, "412");
    c.send(&format!("PRIVMSG #calm :{}", "x".repeat(600))).await;
    assert_eq!(c.recv().await.command, "417");
    c.send_raw(&vec![b'z'; 20_000]).await;
    c.send_raw(b"\r\n").await;
    assert_eq!(c.recv().await.command, "417");
    c.send(&format!("@+draft/tag={} PING :tagged", "v".repeat(3000)))
        .await;
    assert_eq!(c.recv().await.text(), "tagged");
    c.send_raw(b"PRIVMSG #calm :\xff\xfe\r\n").await;
    let m = c.recv().await;
    assert_eq!((m.command.as_str(), m.param(1)), ("FAIL", "INVALID_UTF8"));
    c.send("USER again 0 * :x").await;
    assert_eq!(c.recv().await.command, "462");
    c.send("NICK other").await;
    assert_eq!(c.recv().await.command, "400");
    c.send("MODE #calm +o fine").await;
    assert_eq!(c.recv().await.command, "482");
    // Channels: 403 for no such channel, 404 for one not joined, 442 for leaving one not in.
    c.send("PRIVMSG #nowhere :hello").await;
    assert_eq!(c.recv().await.command, "403");
    c.send("PRIVMSG #calm :hello").await;
    assert_eq!(c.recv().await.command, "404");
    c.send("PART #calm").await;
    assert_eq!(c.recv().await.command, "442");
    c.send("JOIN nohash").await;
    assert_eq!(c.recv().await.command, "403");
    c.send("JOIN #bad!name").await;
    assert_eq!(c.recv().await.command, "403");
    c.send("TOPIC #nowhere").await;
    assert_eq!(c.recv().await.command, "403");
    c.send("TOPIC #calm :mine now").await;
    assert_eq!(c.recv().await.command, "442");
    // A nick nobody has: 401.
    c.send("PRIVMSG ghost :boo").await;
    let m = c.recv().await;
    assert_eq!((m.command.as_str(), m.param(1)), ("401", "ghost"));
    c.send("NOTICE ghost :notices get no error").await;
    let after = c.sync().await;
    assert!(after.is_empty(), "a NOTICE is never answered: {after:?}");
    // The bystander saw none of it and still works.
    assert!(other.sync().await.is_empty());
    c.send("JOIN #calm").await;
    c.expect("366").await;
    c.send("PRIVMSG #calm :all good").await;
    let m = other.expect("PRIVMSG").await;
    assert_eq!((m.nick(), m.text()), ("fine", "all good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_registers_is_dropped() {
    let s = TestServer::start().await;
    let mut silent = IrcClient::connect(s.irc_addr).await;
    let mut half = IrcClient::connect(s.irc_addr).await;
    half.send("NICK halfway").await;
    let started = std::time::Instant::now();
    for c in [&mut silent, &mut half] {
        let rest = c.closed().await;
        let last = rest.last().unwrap();
        assert_eq!(last.command, "ERROR");
        assert!(last.text().contains("registration timed out"), "{last:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The name asked for was never taken.
    let mut c = IrcClient::register(s.irc_addr, "halfway").await;
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_cut_off_and_others_carry_on() {
    let s = TestServer::start_with(|c| {
        c.rate_per_sec = 5;
        c.burst = 10;
    })
    .await;
    let mut calm = IrcClient::register(s.irc_addr, "calm").await;
    let mut flood = IrcClient::register(s.irc_addr, "flood").await;
    let lines: String = (0..100).map(|i| format!("PING :{i}\r\n")).collect();
    flood.send_raw(lines.as_bytes()).await;
    let seen = flood.closed().await;
    assert!(
        seen.iter()
            .any(|m| m.command == "NOTICE" && m.text().contains("too fast")),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().unwrap().raw,
        "ERROR :Closing link: Excess Flood"
    );
    calm.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_held_by_someone_else_is_never_given_twice() {
    let s = TestServer::start().await;
    let _bob = s.client("bob").await;
    let _reg = s.client_pw("regina", "s3cret").await;
    let mut c = IrcClient::connect(s.irc_addr).await;
    c.send("USER x 0 * :x").await;
    c.send("NICK Bob").await;
    let m = c.recv().await;
    assert_eq!((m.command.as_str(), m.param(1)), ("433", "Bob"));
    // A registered name without its password: 433 too, and the client may pick another.
    c.send("NICK regina").await;
    let m = c.recv().await;
    assert_eq!((m.command.as_str(), m.param(1)), ("433", "regina"));
    assert!(m.text().contains("PASS or SASL"), "{m:?}");
    c.send("NICK bob_").await;
    let welcome = c.expect("001").await;
    assert_eq!(welcome.param(0), "bob_");
    // The same nick from a second IRC connection: 433.
    let mut d = IrcClient::connect(s.irc_addr).await;
    d.send("NICK bob_").await;
    d.send("USER x 0 * :x").await;
    assert_eq!(d.recv().await.command, "433");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_opens_a_registered_name_and_registers_a_new_one() {
    let s = TestServer::start().await;
    let _carol = s.client_pw("carol", "right").await;
    // A wrong password: 464, then ERROR and the connection closes.
    let mut c = IrcClient::connect(s.irc_addr).await;
    c.send("PASS wrong").await;
    c.send("NICK carol").await;
    c.send("USER carol 0 * :Carol").await;
    let rest = c.closed().await;
    assert_eq!(numerics(&rest), ["464", "ERROR"]);
    // The right one: carol, registered, alongside her native session.
    let mut c = IrcClient::connect(s.irc_addr).await;
    c.send("PASS right").await;
    c.send("NICK carol").await;
    c.send("USER carol 0 * :Carol").await;
    assert_eq!(c.expect("001").await.param(0), "carol");
    c.send("WHOIS carol").await;
    let whois = c.until("318").await;
    assert!(numerics(&whois).contains(&"330"), "{whois:?}");
    // PASS with a new name registers it: a guest can no longer take it.
    let mut d = IrcClient::connect(s.irc_addr).await;
    d.send("PASS fresh-pw").await;
    d.send("NICK dave").await;
    d.send("USER dave 0 * :Dave").await;
    d.expect("001").await;
    let refused = switchboard_client::Client::connect_as(&s.url, "dave", None).await;
    assert!(refused.is_err(), "a guest took a registered name");
    let (dave, _) = switchboard_client::Client::connect_as(&s.url, "dave", Some("fresh-pw"))
        .await
        .unwrap();
    drop(dave);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_negotiation_and_sasl_plain() {
    use base64::Engine as _;
    let s = TestServer::start().await;
    let _erin = s.client_pw("Erin", "pw-of-erin").await;
    let mut c = IrcClient::connect(s.irc_addr).await;
    c.send("CAP LS 302").await;
    let ls = c.expect("CAP").await;
    assert_eq!((ls.param(0), ls.param(1)), ("*", "LS"));
    for cap in [
        "sasl=PLAIN",
        "server-time",
        "message-tags",
        "echo-message",
        "batch",
        "draft/chathistory",
    ] {
        assert!(
            ls.text().split(' ').any(|c| c == cap),
            "{cap} not in {ls:?}"
        );
    }
    c.send("NICK erin").await;
    c.send("USER erin 0 * :Erin").await;
    // Registration waits for CAP END.
    assert!(c.quiet(300).await.is_empty());
    c.send("CAP REQ :sasl bogus-cap").await;
    assert_eq!(c.expect("CAP").await.param(1), "NAK");
    c.send("CAP REQ :sasl").await;
    let ack = c.expect("CAP").await;
    assert_eq!((ack.param(1), ack.text()), ("ACK", "sasl"));
    let plain = |user: &str, pw: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}\0{user}\0{pw}"))
    };
    c.send("AUTHENTICATE PLAIN").await;
    assert_eq!(c.recv().await.raw, "AUTHENTICATE +");
    c.send(&format!("AUTHENTICATE {}", plain("erin", "nope")))
        .await;
    assert_eq!(c.recv().await.command, "904");
    c.send("AUTHENTICATE PLAIN").await;
    assert_eq!(c.recv().await.raw, "AUTHENTICATE +");
    c.send(&format!("AUTHENTICATE {}", plain("erin", "pw-of-erin")))
        .await;
    let logged = c.recv().await;
    assert_eq!((logged.command.as_str(), logged.param(2)), ("900", "Erin"));
    assert_eq!(c.recv().await.command, "903");
    c.send("CAP END").await;
    // Welcomed under the account's name, as its registered case.
    assert_eq!(c.expect("001").await.param(0), "Erin");
    c.send("CAP LIST").await;
    assert_eq!(c.expect("CAP").await.text(), "sasl");
}
