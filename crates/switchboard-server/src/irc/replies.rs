//! The core's frames as IRC lines: the JOIN echo and NAMES for `joined`, PRIVMSG for
//! `message`, numerics for replies and errors (matched to their command by the request's
//! `ref`), and the bookkeeping that keeps a client's own messages from coming back to it.

use std::collections::BTreeSet;

use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{ChatMessage, ErrorCode, ServerMsg};

use super::line;
use super::playback::Playback;
use super::session::{Channel, Irc, Pending};
use super::{HOST, NETWORK};

/// A user's prefix: `nick!nick@switchboard`.
pub(super) fn mask(nick: &str) -> String {
    format!("{nick}!{nick}@{HOST}")
}

/// A channel's or nick's key: without `#`, lowercase (CASEMAPPING=ascii).
pub(super) fn key(name: &str) -> String {
    name.trim_start_matches('#').to_ascii_lowercase()
}

impl Irc {
    /// One frame of the core, as IRC lines.
    pub(super) fn translate(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Welcome { name, dms, .. } => {
                for d in dms {
                    self.dms.insert(key(&d.with), d.with);
                }
                self.name = Some(name);
                super::commands::welcome(self);
            }
            ServerMsg::Joined {
                room,
                cursor,
                topic,
                members,
                reff,
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
                if !self.caps.chathistory {
                    self.playback.push(Playback {
                        channel: ch.clone(),
                        stream: switchboard_proto::room_key(&room),
                        cursor,
                    });
                }
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
            ServerMsg::Who {
                reff, users, away, ..
            } => match self.take(reff) {
                Some(Pending::Names(ch)) => self.names(&ch, &users),
                Some(Pending::Who(mask)) => {
                    let ch = if mask.starts_with('#') {
                        mask.clone()
                    } else {
                        "*".into()
                    };
                    for u in &users {
                        self.who_line(&ch, u, away.contains_key(u));
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
                away,
            } => match self.take(reff) {
                Some(Pending::WhoNick(mask)) => {
                    if online {
                        self.who_line("*", &name, away.is_some());
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
                        if let Some(away) = away {
                            self.numeric("301", &[&name, &away]);
                        }
                    }
                    self.numeric("318", &[&name, "End of /WHOIS list"]);
                }
                _ => {}
            },
            ServerMsg::Away {
                reff,
                name,
                message,
            } => {
                let asked = matches!(self.take(reff), Some(Pending::Away));
                if asked || name.eq_ignore_ascii_case(self.me()) {
                    // This connection's AWAY, or another session of the user (the web page)
                    // changed it: away is the user's, so the client is told either way.
                    match message {
                        Some(_) => self.numeric("306", &["You have been marked as being away"]),
                        None => self.numeric("305", &["You are no longer marked as being away"]),
                    }
                } else {
                    self.away_changed(&name, message.as_deref());
                }
            }
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

    fn who_line(&mut self, ch: &str, nick: &str, away: bool) {
        let flag = if away { "G" } else { "H" };
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
                // If they are away, the core's `away` frame follows (away-notify).
                self.out
                    .push_str(&line::format(&[], &mask(name), "JOIN", &[&chan]));
            }
            PresenceEvent::Leave => {
                ch.members.remove(&key(name));
                self.out
                    .push_str(&line::format(&[], &mask(name), "PART", &[&chan]));
            }
        }
    }

    /// Someone's away state changed, on any node and protocol: told when they share a
    /// channel and the client asked for away-notify.
    fn away_changed(&mut self, name: &str, message: Option<&str>) {
        let k = key(name);
        if !self.caps.away_notify || !self.channels.values().any(|c| c.members.contains(&k)) {
            return;
        }
        let params: Vec<&str> = message.into_iter().collect();
        self.out
            .push_str(&line::format(&[], &mask(name), "AWAY", &params));
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
                let (command, params) = send_refused(&me, &target, code, message);
                let params: Vec<&str> = params.iter().map(String::as_str).collect();
                self.server_line(command, &params);
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
            Some(Pending::Away) | None => self.server_line("NOTICE", &[&me, message]),
        }
    }

    /// A message of the core: shown, unless it is this connection's own and the client did
    /// not ask for echo-message.
    fn message(&mut self, m: ChatMessage) {
        if let (None, Some(to)) = (&m.room, &m.to) {
            let other = if m.from.eq_ignore_ascii_case(self.me()) {
                to
            } else {
                &m.from
            };
            self.dms.entry(key(other)).or_insert_with(|| other.clone());
        }
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
        let lines = self.render(m, command, batch);
        self.out.push_str(&lines);
    }

    /// A message as IRC lines, with the tags this connection asked for.
    fn render(&self, m: &ChatMessage, command: &str, batch: Option<&str>) -> String {
        let caps = &self.caps;
        let registered = caps.account_tag
            && self
                .shared
                .core
                .lock()
                .expect("core lock")
                .is_registered(&m.from);
        super::fanout::render(m, self.variant(), registered, command, batch)
    }

    /// This connection's capability combination, for rendering (fanout.rs).
    pub(super) fn variant(&self) -> u8 {
        let caps = &self.caps;
        super::fanout::variant(caps.server_time, caps.account_tag, caps.message_tags)
    }
}

/// How a refused PRIVMSG to `target` is answered: the command after `:server` and its
/// parameters, the nick first. A node that sheds load (`busy`) answers 263 RPL_TRYAGAIN,
/// which IRC clients know and load generators can count.
fn send_refused(
    me: &str,
    target: &str,
    code: ErrorCode,
    message: &str,
) -> (&'static str, Vec<String>) {
    let chan = target.starts_with('#');
    let (command, rest): (&str, [&str; 2]) = match code {
        ErrorCode::NotFound | ErrorCode::InvalidRoom if chan => {
            ("403", [target, "No such channel"])
        }
        ErrorCode::NotFound | ErrorCode::InvalidName => ("401", [target, "No such nick/channel"]),
        ErrorCode::NotMember => ("404", [target, "Cannot send to channel: join it first"]),
        ErrorCode::Busy => ("263", ["PRIVMSG", message]),
        _ => {
            return (
                "NOTICE",
                vec![me.to_string(), format!("{target}: {message}")],
            );
        }
    };
    let mut params = vec![me.to_string()];
    params.extend(rest.iter().map(|p| p.to_string()));
    (command, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_privmsg_gets_the_numeric_of_its_reason() {
        let busy = "the node is writing a backlog to disk; retry shortly";
        assert_eq!(
            send_refused("ann", "bob", ErrorCode::Busy, busy),
            ("263", vec!["ann".into(), "PRIVMSG".into(), busy.into()])
        );
        assert_eq!(send_refused("ann", "#r", ErrorCode::NotFound, "x").0, "403");
        assert_eq!(
            send_refused("ann", "bob", ErrorCode::NotFound, "x").0,
            "401"
        );
        assert_eq!(
            send_refused("ann", "#r", ErrorCode::NotMember, "x").0,
            "404"
        );
        assert_eq!(
            send_refused("ann", "bob", ErrorCode::TooLarge, "too long"),
            ("NOTICE", vec!["ann".into(), "bob: too long".into()])
        );
    }
}
