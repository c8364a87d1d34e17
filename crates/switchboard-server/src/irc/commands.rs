//! A registered connection's commands, turned into requests to the core (or answered here:
//! MODE, MOTD, LUSERS, WHOWAS), and the welcome burst.

use switchboard_proto::ClientMsg;

use super::line::Line;
use super::replies::key;
use super::session::{End, Irc, Pending};
use super::NETWORK;

/// Longest away message kept (ISUPPORT AWAYLEN): the core's limit for every protocol.
const AWAYLEN: usize = switchboard_proto::limits::MAX_AWAY_BYTES;
const _: () = assert!(AWAYLEN == 200, "ISUPPORT says AWAYLEN=200");

/// Most targets of one PRIVMSG or NOTICE (ISUPPORT TARGMAX).
const MAX_TARGETS: usize = 4;

/// The ISUPPORT (005) tokens, at most 13 a line.
const ISUPPORT: &[&str] = &[
    "AWAYLEN=200",
    "CASEMAPPING=ascii",
    "CHANLIMIT=#:",
    "CHANMODES=,,,n",
    "CHANNELLEN=65",
    "CHANTYPES=#",
    "CHATHISTORY=500",
    "ELIST=",
    "MAXTARGETS=4",
    "MODES=0",
    "MSGREFTYPES=msgid,timestamp",
    "NETWORK=Switchboard",
    "NICKLEN=32",
    "PREFIX=",
    "TARGMAX=JOIN:,PART:,PRIVMSG:4,NOTICE:4,NAMES:1,WHOIS:1",
    "TOPICLEN=512",
    "USERLEN=32",
    "UTF8ONLY",
];

/// A registered connection's command.
pub(super) async fn command(irc: &mut Irc, l: Line) -> Option<End> {
    let p = |i: usize| l.params.get(i).cloned();
    let me = irc.me().to_string();
    match l.command.as_str() {
        "NICK" => match p(0) {
            Some(n) if n.eq_ignore_ascii_case(&me) => {}
            Some(_) => irc.numeric(
                "400",
                &["NICK", "Nick changes are not supported: your nick is your Switchboard name; reconnect with another"],
            ),
            None => irc.numeric("431", &["No nickname given"]),
        },
        "USER" | "PASS" => irc.numeric("462", &["You may not reregister"]),
        "JOIN" => match p(0) {
            None => irc.numeric("461", &["JOIN", "Not enough parameters"]),
            Some(z) if z == "0" => {
                let all: Vec<String> = irc.channels.values().map(|c| c.name.clone()).collect();
                for room in all {
                    irc.request(
                        ClientMsg::Leave { room: room.clone(), reff: None },
                        Pending::Part(format!("#{room}")),
                    );
                }
            }
            Some(list) => {
                for ch in list.split(',').filter(|c| !c.is_empty()) {
                    let Some(room) = ch.strip_prefix('#') else {
                        irc.numeric("403", &[ch, "No such channel: channel names start with #"]);
                        continue;
                    };
                    if irc.channels.contains_key(&key(room)) {
                        continue;
                    }
                    irc.shared.prepare_room(room).await;
                    irc.request(
                        ClientMsg::Join { room: room.to_string(), reff: None },
                        Pending::Join(ch.to_string()),
                    );
                }
            }
        },
        "PART" => match p(0) {
            None => irc.numeric("461", &["PART", "Not enough parameters"]),
            Some(list) => {
                for ch in list.split(',').filter(|c| !c.is_empty()) {
                    let Some(room) = ch.strip_prefix('#') else {
                        irc.numeric("403", &[ch, "No such channel"]);
                        continue;
                    };
                    irc.request(
                        ClientMsg::Leave { room: room.to_string(), reff: None },
                        Pending::Part(ch.to_string()),
                    );
                }
            }
        },
        c @ ("PRIVMSG" | "NOTICE") => {
            let notice = c == "NOTICE";
            match (p(0), p(1)) {
                (None, _) if !notice => irc.numeric("411", &[&format!("No recipient given ({c})")]),
                (Some(_), None) if !notice => irc.numeric("412", &["No text to send"]),
                (Some(_), Some(t)) if t.trim().is_empty() && !notice => {
                    irc.numeric("412", &["No text to send"])
                }
                (Some(targets), Some(text)) if !text.trim().is_empty() => {
                    let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
                    if targets.len() > MAX_TARGETS {
                        irc.numeric("407", &[&l.params[0], "Too many recipients"]);
                        return None;
                    }
                    for target in targets {
                        send(irc, target, &text, notice);
                    }
                }
                _ => {}
            }
        }
        "TOPIC" => match (p(0), p(1)) {
            (None, _) => irc.numeric("461", &["TOPIC", "Not enough parameters"]),
            (Some(ch), topic) => {
                let Some(room) = ch.strip_prefix('#') else {
                    irc.numeric("403", &[&ch, "No such channel"]);
                    return None;
                };
                let pending = match topic {
                    Some(_) => Pending::TopicSet(ch.clone()),
                    None => Pending::TopicRead(ch.clone()),
                };
                irc.request(
                    ClientMsg::Topic { room: room.to_string(), topic, reff: None },
                    pending,
                );
            }
        },
        "NAMES" => match p(0).and_then(|c| c.split(',').next().map(str::to_string)) {
            Some(ch) if ch.starts_with('#') => irc.request(
                ClientMsg::Who { room: Some(ch[1..].to_string()), reff: None },
                Pending::Names(ch),
            ),
            Some(ch) => irc.numeric("366", &[&ch, "End of /NAMES list"]),
            None => irc.numeric("366", &["*", "End of /NAMES list"]),
        },
        "LIST" => {
            let filter = p(0)
                .filter(|f| f.starts_with('#'))
                .map(|f| f.split(',').map(key).collect());
            irc.request(ClientMsg::Rooms { reff: None }, Pending::List(filter));
        }
        "WHO" => match p(0).filter(|m| !matches!(m.as_str(), "*" | "0" | "")) {
            Some(ch) if ch.starts_with('#') => irc.request(
                ClientMsg::Who { room: Some(ch[1..].to_string()), reff: None },
                Pending::Who(ch),
            ),
            Some(nick) => irc.request(
                ClientMsg::Whois { name: nick.clone(), reff: None },
                Pending::WhoNick(nick),
            ),
            None => irc.request(ClientMsg::Who { room: None, reff: None }, Pending::Who("*".into())),
        },
        "WHOIS" => match l.params.last() {
            None => irc.numeric("431", &["No nickname given"]),
            Some(nick) => {
                let nick = nick.split(',').next().unwrap_or_default().to_string();
                if switchboard_proto::validate_name(&nick).is_err() {
                    irc.numeric("401", &[&nick, "No such nick/channel"]);
                    irc.numeric("318", &[&nick, "End of /WHOIS list"]);
                } else {
                    irc.request(
                        ClientMsg::Whois { name: nick.clone(), reff: None },
                        Pending::Whois(nick),
                    );
                }
            }
        },
        "AWAY" => match p(0).filter(|m| !m.is_empty()) {
            Some(mut m) => {
                if m.len() > AWAYLEN {
                    let mut cut = AWAYLEN;
                    while !m.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    m.truncate(cut);
                }
                // Away is the user's, on every node and protocol: the core keeps it, and
                // its reply becomes 306.
                irc.request(ClientMsg::Away { message: Some(m), reff: None }, Pending::Away);
            }
            None => irc.request(ClientMsg::Away { message: None, reff: None }, Pending::Away),
        },
        // Nothing is kept of users gone (irssi asks after a WHOIS gets 401).
        "WHOWAS" => match p(0) {
            None => irc.numeric("431", &["No nickname given"]),
            Some(nick) => {
                irc.numeric("406", &[&nick, "There was no such nickname"]);
                irc.numeric("369", &[&nick, "End of WHOWAS"]);
            }
        },
        // Who of these is online (irssi's /notify asks this way).
        "ISON" => {
            let core = irc.shared.core.lock().expect("core lock");
            let on: Vec<String> = l
                .params
                .iter()
                .flat_map(|p| p.split(' '))
                .filter_map(|n| core.online_name(n))
                .collect();
            drop(core);
            irc.numeric("303", &[&on.join(" ")]);
        }
        "USERHOST" => {
            let core = irc.shared.core.lock().expect("core lock");
            let replies: Vec<String> = l
                .params
                .iter()
                .take(5)
                .filter_map(|n| core.online_name(n))
                .map(|n| {
                    let away = if core.away_of(&n).is_some() { '-' } else { '+' };
                    format!("{n}={away}{n}@{}", super::HOST)
                })
                .collect();
            drop(core);
            irc.numeric("302", &[&replies.join(" ")]);
        }
        "MOTD" => motd(irc),
        "LUSERS" => lusers(irc),
        "MODE" => mode(irc, &l.params),
        "CHATHISTORY" => irc.chathistory(&l.params).await,
        // Client-only tags are not relayed: nothing to do.
        "TAGMSG" => {}
        other => {
            let other = other.to_string();
            irc.numeric("421", &[&other, "Unknown command"]);
        }
    }
    None
}

fn send(irc: &mut Irc, target: &str, text: &str, notice: bool) {
    let msg = match target.strip_prefix('#') {
        Some(room) => ClientMsg::Send {
            room: Some(room.to_string()),
            to: None,
            text: text.to_string(),
            reff: None,
        },
        None => {
            if !notice {
                let away = irc.shared.core.lock().expect("core lock").away_of(target);
                if let Some(away) = away {
                    irc.numeric("301", &[target, &away]);
                }
            }
            ClientMsg::Send {
                room: None,
                to: Some(target.to_string()),
                text: text.to_string(),
                reff: None,
            }
        }
    };
    let pending = Pending::Send {
        target: target.to_string(),
        notice,
    };
    irc.request(msg, pending);
}

fn mode(irc: &mut Irc, params: &[String]) {
    let Some(target) = params.first() else {
        irc.numeric("461", &["MODE", "Not enough parameters"]);
        return;
    };
    if target.starts_with('#') {
        match params.get(1).map(String::as_str) {
            None => irc.numeric("324", &[target, "+n"]),
            Some("b" | "+b") if params.len() == 2 => {
                irc.numeric("368", &[target, "End of channel ban list"])
            }
            Some(_) => irc.numeric(
                "482",
                &[
                    target,
                    "Channel modes are not supported: rooms have no operators",
                ],
            ),
        }
    } else if target.eq_ignore_ascii_case(irc.me()) {
        irc.numeric("221", &["+"]);
    } else {
        irc.numeric("502", &["Can't change mode for other users"]);
    }
}

/// The burst after registration: 001-005, LUSERS and the MOTD.
pub(super) fn welcome(irc: &mut Irc) {
    let me = irc.me().to_string();
    let server = irc.server.clone();
    let version = format!("switchboard-{}", env!("CARGO_PKG_VERSION"));
    irc.numeric(
        "001",
        &[&format!("Welcome to the {NETWORK} IRC network, {me}")],
    );
    irc.numeric(
        "002",
        &[&format!("Your host is {server}, running version {version}")],
    );
    irc.numeric(
        "003",
        &[&format!(
            "This server is node {server} of a Switchboard cluster"
        )],
    );
    irc.numeric("004", &[&server, &version, "i", "n"]);
    for tokens in ISUPPORT.chunks(13) {
        let mut params: Vec<&str> = tokens.to_vec();
        params.push("are supported by this server");
        irc.numeric("005", &params);
    }
    lusers(irc);
    motd(irc);
}

fn lusers(irc: &mut Irc) {
    let c = irc.shared.core.lock().expect("core lock").census();
    irc.numeric(
        "251",
        &[&format!(
            "There are {} users and 0 invisible on {} servers",
            c.users, c.nodes
        )],
    );
    irc.numeric("254", &[&c.rooms.to_string(), "channels formed"]);
    irc.numeric(
        "255",
        &[&format!(
            "I have {} clients and {} servers",
            c.local_users,
            c.nodes - 1
        )],
    );
}

fn motd(irc: &mut Irc) {
    let server = irc.server.clone();
    irc.numeric("375", &[&format!("- {server} Message of the day - ")]);
    for l in [
        "Welcome to Switchboard: channels are Switchboard rooms, shared with web and console users.",
        "/msg NICK sends a direct message; registered names need their password (PASS or SASL).",
        "History: CHATHISTORY (draft/chathistory) reads the node's store. See docs/irc.md.",
    ] {
        irc.numeric("372", &[&format!("- {l}")]);
    }
    irc.numeric("376", &["End of /MOTD command."]);
}
