//! A registered IRC connection's commands, and the core's frames as IRC lines: the JOIN echo
//! and NAMES for `joined`, PRIVMSG for `message`, numerics for replies and errors (matched to
//! their command by the request's `ref`).

use std::collections::BTreeSet;

use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{ChatMessage, ClientMsg, ErrorCode, Position, ServerMsg};

use super::line::{self, escape_tag, iso_time, split_text, Line};
use super::session::{Channel, End, Irc, Pending};
use super::{AwayChange, HOST, NETWORK};

/// Longest away message kept (ISUPPORT AWAYLEN).
const AWAYLEN: usize = 200;

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
    "MSGREFTYPES=msgid",
    "NETWORK=Switchboard",
    "NICKLEN=32",
    "PREFIX=",
    "TARGMAX=JOIN:,PART:,PRIVMSG:4,NOTICE:4,NAMES:1,WHOIS:1",
    "TOPICLEN=512",
    "USERLEN=32",
    "UTF8ONLY",
];

/// A message's IRC msgid: its Lamport clock and its id (`origin-oseq`), so that a CHATHISTORY
/// selector names a place in the stream's order.
pub(super) fn msgid(m: &ChatMessage) -> String {
    format!("{}-{}", m.lamport, m.id)
}

/// The position a msgid names.
pub(super) fn parse_msgid(s: &str) -> Option<Position> {
    let (lamport, id) = s.split_once('-')?;
    let (origin, oseq) = id.rsplit_once('-')?;
    oseq.parse::<u64>().ok()?;
    Some(Position {
        lamport: lamport.parse().ok()?,
        origin: origin.to_string(),
    })
}

fn mask(nick: &str) -> String {
    format!("{nick}!{nick}@{HOST}")
}

fn key(name: &str) -> String {
    name.trim_start_matches('#').to_ascii_lowercase()
}

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
                irc.shared.irc.set_away(irc.session, &me, Some(m));
                irc.numeric("306", &["You have been marked as being away"]);
            }
            None => {
                irc.shared.irc.set_away(irc.session, &me, None);
                irc.numeric("305", &["You are no longer marked as being away"]);
            }
        },
        // Nothing is kept of users gone (irssi asks after a WHOIS gets 401).
        "WHOWAS" => match p(0) {
            None => irc.numeric("431", &["No nickname given"]),
            Some(nick) => {
                irc.numeric("406", &[&nick, "There was no such nickname"]);
                irc.numeric("369", &[&nick, "End of WHOWAS"]);
            }
        },
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
                if let Some(away) = irc.shared.irc.away_of(target) {
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

fn welcome(irc: &mut Irc) {
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

impl Irc {
    /// One frame of the core, as IRC lines.
    pub(super) fn translate(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Welcome { name, .. } => {
                self.name = Some(name);
                welcome(self);
            }
            ServerMsg::Joined {
                room,
                topic,
                members,
                reff,
                ..
            } => {
                self.take(reff);
                let k = key(&room);
                if self.channels.contains_key(&k) {
                    return;
                }
                let ch = format!("#{room}");
                let me = self.me().to_string();
                self.out
                    .push_str(&line::format(&[], &mask(&me), "JOIN", &[&ch]));
                if let Some(t) = &topic {
                    self.numeric("332", &[&ch, t]);
                    self.topic_who_time(&ch);
                }
                self.names(&ch, &members);
                let members: BTreeSet<String> = members.iter().map(|m| key(m)).collect();
                self.channels.insert(
                    k,
                    Channel {
                        name: room,
                        members,
                    },
                );
            }
            ServerMsg::Left { room, reff } => {
                self.take(reff);
                if self.channels.remove(&key(&room)).is_some() {
                    let me = self.me().to_string();
                    self.out.push_str(&line::format(
                        &[],
                        &mask(&me),
                        "PART",
                        &[&format!("#{room}")],
                    ));
                }
            }
            ServerMsg::Message(m) => self.message(m),
            ServerMsg::Ack { reff, id, .. } => self.ack(reff, id),
            ServerMsg::Presence { room, name, event } => self.presence(&room, &name, event),
            ServerMsg::Rooms { reff, rooms } => {
                let Some(Pending::List(filter)) = self.take(reff) else {
                    return;
                };
                self.numeric("321", &["Channel", "Users  Name"]);
                for r in rooms {
                    if filter.as_ref().is_some_and(|f| !f.contains(&key(&r.room))) {
                        continue;
                    }
                    let topic = r.topic.unwrap_or_default();
                    self.numeric(
                        "322",
                        &[&format!("#{}", r.room), &r.members.to_string(), &topic],
                    );
                }
                self.numeric("323", &["End of /LIST"]);
            }
            ServerMsg::Topic {
                reff,
                room,
                topic,
                by,
            } => {
                let ch = format!("#{room}");
                match self.take(reff) {
                    Some(Pending::TopicRead(_)) => match topic {
                        Some(t) => {
                            self.numeric("332", &[&ch, &t]);
                            self.topic_who_time(&ch);
                        }
                        None => self.numeric("331", &[&ch, "No topic is set"]),
                    },
                    _ => {
                        let by = by.unwrap_or_else(|| self.server.clone());
                        let t = topic.unwrap_or_default();
                        self.out
                            .push_str(&line::format(&[], &mask(&by), "TOPIC", &[&ch, &t]));
                    }
                }
            }
            ServerMsg::Who { reff, users, .. } => match self.take(reff) {
                Some(Pending::Names(ch)) => self.names(&ch, &users),
                Some(Pending::Who(mask)) => {
                    let ch = if mask.starts_with('#') {
                        mask.clone()
                    } else {
                        "*".into()
                    };
                    for u in &users {
                        self.who_line(&ch, u);
                    }
                    self.numeric("315", &[&mask, "End of /WHO list"]);
                }
                _ => {}
            },
            ServerMsg::Whois {
                reff,
                name,
                online,
                registered,
                rooms,
            } => match self.take(reff) {
                Some(Pending::WhoNick(mask)) => {
                    if online {
                        self.who_line("*", &name);
                    }
                    self.numeric("315", &[&mask, "End of /WHO list"]);
                }
                Some(Pending::Whois(_)) => {
                    if !online {
                        self.numeric("401", &[&name, "No such nick/channel"]);
                    } else {
                        self.numeric("311", &[&name, &name, HOST, "*", &name]);
                        let chans: Vec<String> = rooms.iter().map(|r| format!("#{r}")).collect();
                        if !chans.is_empty() {
                            self.numeric("319", &[&name, &chans.join(" ")]);
                        }
                        self.numeric(
                            "312",
                            &[&name, NETWORK, "Switchboard, a cluster of chat nodes"],
                        );
                        if registered {
                            self.numeric("330", &[&name, &name, "is logged in as"]);
                        }
                        if let Some(away) = self.shared.irc.away_of(&name) {
                            self.numeric("301", &[&name, &away]);
                        }
                    }
                    self.numeric("318", &[&name, "End of /WHOIS list"]);
                }
                _ => {}
            },
            ServerMsg::Error {
                code,
                message,
                reff,
            } => {
                let pending = self.take(reff);
                self.refused(pending, code, &message)
            }
            ServerMsg::Shutdown { reason } => {
                let me = self.me().to_string();
                self.server_line(
                    "NOTICE",
                    &[&me, &format!("The node is shutting down: {reason}")],
                );
            }
            ServerMsg::Undelivered { to, reason, .. } => {
                let me = self.me().to_string();
                self.server_line(
                    "NOTICE",
                    &[&me, &format!("Not delivered to {to}: {reason}")],
                );
            }
            ServerMsg::History { .. }
            | ServerMsg::Pong { .. }
            | ServerMsg::Contacts { .. }
            | ServerMsg::Contact { .. } => {}
        }
    }

    /// 333 RPL_TOPICWHOTIME, when the node knows who set the topic (it does for topics set
    /// since it started).
    fn topic_who_time(&mut self, ch: &str) {
        let setter = self.shared.core.lock().expect("core lock").topic_setter(ch);
        if let Some((by, ms)) = setter {
            self.numeric("333", &[ch, &mask(&by), &(ms / 1000).to_string()]);
        }
    }

    fn take(&mut self, reff: Option<String>) -> Option<Pending> {
        self.pending.remove(&reff?)
    }

    /// 353 lines (as many as the names need) and 366.
    fn names(&mut self, ch: &str, members: &[String]) {
        let mut chunk = String::new();
        for m in members {
            if chunk.len() + m.len() > 380 {
                let names = std::mem::take(&mut chunk);
                self.numeric("353", &["=", ch, &names]);
            }
            if !chunk.is_empty() {
                chunk.push(' ');
            }
            chunk.push_str(m);
        }
        if !chunk.is_empty() {
            self.numeric("353", &["=", ch, &chunk]);
        }
        self.numeric("366", &[ch, "End of /NAMES list"]);
    }

    fn who_line(&mut self, ch: &str, nick: &str) {
        let flag = if self.shared.irc.away_of(nick).is_some() {
            "G"
        } else {
            "H"
        };
        let server = self.server.clone();
        self.numeric(
            "352",
            &[ch, nick, HOST, &server, nick, flag, &format!("0 {nick}")],
        );
    }

    fn presence(&mut self, room: &str, name: &str, event: PresenceEvent) {
        if name.eq_ignore_ascii_case(self.me()) {
            return;
        }
        let Some(ch) = self.channels.get_mut(&key(room)) else {
            return;
        };
        let chan = format!("#{}", ch.name);
        match event {
            PresenceEvent::Join => {
                ch.members.insert(key(name));
                self.out
                    .push_str(&line::format(&[], &mask(name), "JOIN", &[&chan]));
                if self.caps.away_notify {
                    if let Some(away) = self.shared.irc.away_of(name) {
                        self.out
                            .push_str(&line::format(&[], &mask(name), "AWAY", &[&away]));
                    }
                }
            }
            PresenceEvent::Leave => {
                ch.members.remove(&key(name));
                self.out
                    .push_str(&line::format(&[], &mask(name), "PART", &[&chan]));
            }
        }
    }

    /// Someone's away state changed: told when they share a channel (away-notify).
    pub(super) fn away_changed(&mut self, a: &AwayChange) {
        if a.name.eq_ignore_ascii_case(self.me()) {
            return;
        }
        let k = key(&a.name);
        if !self.channels.values().any(|c| c.members.contains(&k)) {
            return;
        }
        let params: Vec<&str> = a.message.as_deref().into_iter().collect();
        self.out
            .push_str(&line::format(&[], &mask(&a.name), "AWAY", &params));
    }

    /// An error from the core, answered as the command it was for expects.
    fn refused(&mut self, pending: Option<Pending>, code: ErrorCode, message: &str) {
        let me = self.me().to_string();
        match pending {
            Some(Pending::Join(ch)) => self.numeric("403", &[&ch, message]),
            Some(Pending::Part(ch)) if code == ErrorCode::NotMember => {
                self.numeric("442", &[&ch, "You're not on that channel"])
            }
            Some(Pending::Part(ch)) => self.numeric("403", &[&ch, message]),
            Some(Pending::Send { target, notice }) => {
                self.echo.sent = self.echo.sent.saturating_sub(1);
                self.release_held();
                if notice {
                    return;
                }
                let chan = target.starts_with('#');
                match code {
                    ErrorCode::NotFound | ErrorCode::InvalidRoom if chan => {
                        self.numeric("403", &[&target, "No such channel"])
                    }
                    ErrorCode::NotFound | ErrorCode::InvalidName => {
                        self.numeric("401", &[&target, "No such nick/channel"])
                    }
                    ErrorCode::NotMember => {
                        self.numeric("404", &[&target, "Cannot send to channel: join it first"])
                    }
                    _ => self.server_line("NOTICE", &[&me, &format!("{target}: {message}")]),
                }
            }
            Some(Pending::TopicRead(ch) | Pending::TopicSet(ch)) => match code {
                ErrorCode::NotMember => self.numeric("442", &[&ch, "You're not on that channel"]),
                ErrorCode::NotFound | ErrorCode::InvalidRoom => {
                    self.numeric("403", &[&ch, "No such channel"])
                }
                _ => self.server_line("NOTICE", &[&me, &format!("{ch}: {message}")]),
            },
            Some(Pending::Names(ch)) => self.numeric("366", &[&ch, "End of /NAMES list"]),
            Some(Pending::Who(mask) | Pending::WhoNick(mask)) => {
                self.numeric("315", &[&mask, "End of /WHO list"])
            }
            Some(Pending::Whois(nick)) => {
                self.numeric("401", &[&nick, "No such nick/channel"]);
                self.numeric("318", &[&nick, "End of /WHOIS list"]);
            }
            Some(Pending::List(_)) => self.numeric("323", &["End of /LIST"]),
            None => self.server_line("NOTICE", &[&me, message]),
        }
    }

    /// A message of the core: shown, unless it is this connection's own and the client did
    /// not ask for echo-message.
    fn message(&mut self, m: ChatMessage) {
        if !m.from.eq_ignore_ascii_case(self.me()) {
            return self.show(&m, "PRIVMSG", None);
        }
        if let Some(i) = self.echo.acked.iter().position(|(id, _)| *id == m.id) {
            let (_, notice) = self.echo.acked.remove(i).expect("found above");
            if self.caps.echo {
                self.show(&m, if notice { "NOTICE" } else { "PRIVMSG" }, None);
            }
            return;
        }
        if self.echo.sent > 0 {
            self.echo.held.push(m);
            return;
        }
        // From another session of the same user (the web page, say).
        self.show(&m, "PRIVMSG", None);
    }

    fn ack(&mut self, reff: Option<String>, id: String) {
        let Some(Pending::Send { notice, .. }) = self.take(reff) else {
            return;
        };
        self.echo.sent = self.echo.sent.saturating_sub(1);
        if let Some(i) = self.echo.held.iter().position(|m| m.id == id) {
            let m = self.echo.held.remove(i);
            if self.caps.echo {
                self.show(&m, if notice { "NOTICE" } else { "PRIVMSG" }, None);
            }
        } else {
            self.echo.acked.push_back((id, notice));
            if self.echo.acked.len() > 256 {
                self.echo.acked.pop_front();
            }
        }
        self.release_held();
    }

    /// With no send of this connection outstanding, the held messages were another
    /// session's: shown now.
    fn release_held(&mut self) {
        if self.echo.sent == 0 {
            for m in std::mem::take(&mut self.echo.held) {
                self.show(&m, "PRIVMSG", None);
            }
        }
    }

    /// A chat message as IRC lines: one per line of its text, long lines split to fit 512
    /// bytes. Tags as the client asked for them.
    pub(super) fn show(&mut self, m: &ChatMessage, command: &str, batch: Option<&str>) {
        let target = match (&m.room, &m.to) {
            (Some(room), _) => format!("#{room}"),
            (None, Some(to)) => to.clone(),
            (None, None) => return,
        };
        let prefix = mask(&m.from);
        let mut tags = Vec::new();
        if let Some(b) = batch {
            tags.push(format!("batch={b}"));
        }
        if self.caps.server_time {
            tags.push(format!("time={}", iso_time(m.ts)));
        }
        if self.caps.account_tag
            && self
                .shared
                .core
                .lock()
                .expect("core lock")
                .is_registered(&m.from)
        {
            tags.push(format!("account={}", escape_tag(&m.from)));
        }
        let mut msgid = self
            .caps
            .message_tags
            .then(|| format!("msgid={}", escape_tag(&msgid(m))));
        let budget = line::MAX_LINE - (prefix.len() + command.len() + target.len() + 8);
        for text in m.text.split(['\n', '\r']).filter(|t| !t.trim().is_empty()) {
            for piece in split_text(text, budget) {
                let mut t = tags.clone();
                // The msgid names the message: it goes on its first line only.
                t.extend(msgid.take());
                self.out
                    .push_str(&line::format(&t, &prefix, command, &[&target, piece]));
            }
        }
    }

    /// History as a `chathistory` batch (when the client enabled batch).
    pub(super) fn history_batch(&mut self, target: &str, messages: &[ChatMessage]) {
        let id = self.caps.batch.then(|| {
            self.batches += 1;
            format!("h{}", self.batches)
        });
        if let Some(id) = &id {
            let open = format!("+{id}");
            self.server_line("BATCH", &[&open, "chathistory", target]);
        }
        for m in messages {
            self.show(m, "PRIVMSG", id.as_deref());
        }
        if let Some(id) = &id {
            let close = format!("-{id}");
            self.out
                .push_str(&line::format(&[], &self.server.clone(), "BATCH", &[&close]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgids_name_positions() {
        let p = parse_msgid("2077-node-1.a-1042").unwrap();
        assert_eq!((p.lamport, p.origin.as_str()), (2077, "node-1.a"));
        assert_eq!(parse_msgid("x-y"), None);
        assert_eq!(parse_msgid("12-n1-x"), None);
    }
}
