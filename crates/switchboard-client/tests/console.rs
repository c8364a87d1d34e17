//! The console's away commands and lines (the rest of its language is tested in console.rs).

use std::collections::BTreeMap;

use switchboard_client::console::{Action, Console, HELP};
use switchboard_proto::{ClientMsg, ServerMsg};

#[test]
fn away_sets_and_clears_and_shows_in_who_and_whois() {
    let mut c = Console::new();
    c.me = "bob".into();
    assert!(HELP.contains("/away [MESSAGE]"));
    assert!(matches!(c.input("/away out for lunch"),
        Action::Send(ClientMsg::Away { message: Some(m), reff: Some(_) }) if m == "out for lunch"));
    assert!(matches!(
        c.input("/away"),
        Action::Send(ClientMsg::Away { message: None, .. })
    ));
    let away = |message: Option<&str>| ServerMsg::Away {
        reff: None,
        name: "alice".into(),
        message: message.map(str::to_string),
    };
    assert_eq!(c.event(&away(Some("lunch"))), ["* alice is away: lunch"]);
    assert_eq!(c.event(&away(None)), ["* alice is back"]);
    let who = ServerMsg::Who {
        reff: None,
        room: Some("cafe".into()),
        users: vec!["alice".into(), "bob".into()],
        away: BTreeMap::from([("alice".to_string(), "lunch".to_string())]),
    };
    assert_eq!(
        c.event(&who),
        ["* online in #cafe (2): alice (away: lunch), bob"]
    );
    let whois = ServerMsg::Whois {
        reff: None,
        name: "alice".into(),
        online: true,
        registered: false,
        rooms: vec!["cafe".into()],
        away: Some("lunch".into()),
    };
    assert_eq!(
        c.event(&whois),
        ["* alice is online (guest) in #cafe, away: lunch"]
    );
}
