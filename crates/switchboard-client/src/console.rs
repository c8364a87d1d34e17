//! The console client's language: slash commands in, one line of text per event out, and
//! the little state they need (the current room or conversation, cursors for resuming).
//! Shared by the plain (scripted) mode and the full-screen interface.

use std::collections::{BTreeMap, HashMap};

use switchboard_proto::cursor::{advance, covers};
use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{ChatMessage, ClientMsg, Cursor, Position, ServerMsg};

/// The help text of `/help`.
pub const HELP: &str = "commands:
  /join ROOM            join (or create) a room and make it current
  /leave [ROOM]         leave a room (the current one by default)
  /msg NAME [TEXT]      talk to NAME privately (and make the conversation current)
  /who [ROOM]           who is online (in ROOM)
  /whois NAME           is NAME online, registered, away, and in which rooms
  /away [MESSAGE]       mark yourself away (on all your devices); without a message, back
  /rooms                list rooms with member counts and topics
  /topic [TEXT]         show or set the current room's topic
  /history [N]          show N older messages of the current room or conversation
  /contacts             list your contacts (registered names only)
  /contact set NAME NUMBER   add a contact or change its number (quote a name with spaces)
  /contact del NAME     remove a contact
  /quit                 leave
  /help                 this text
  anything else is sent to the current room or conversation";

/// A room or a conversation, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Conv {
    Room(String),
    Dm(String),
}

impl Conv {
    /// `#room` or `@name`.
    pub fn label(&self) -> String {
        match self {
            Conv::Room(r) => format!("#{r}"),
            Conv::Dm(n) => format!("@{n}"),
        }
    }
}

/// What the front end should do after a line of input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this to the node.
    Send(ClientMsg),
    /// Show these lines, send nothing.
    Print(Vec<String>),
    /// Say goodbye and exit.
    Quit,
}

/// A conversation's state in the console.
#[derive(Debug, Clone, Default)]
pub struct ConvState {
    /// What has been seen, the cursor to resume from.
    pub cursor: Cursor,
    /// The oldest message shown, where `/history` pages back from.
    pub oldest: Option<Position>,
    /// Messages not yet looked at (for the full-screen sidebar).
    pub unread: u32,
    /// Room members (rooms only).
    pub members: Vec<String>,
    pub topic: Option<String>,
}

/// The console's state.
#[derive(Debug, Default)]
pub struct Console {
    pub me: String,
    pub current: Option<Conv>,
    pub convs: BTreeMap<Conv, ConvState>,
    /// Rooms joined, to rejoin after a reconnect.
    pub joined: Vec<String>,
    /// Requests sent whose reply has not come yet, by ref.
    pub outstanding: HashMap<String, ()>,
    /// Which of the servers given the client is on (for failover).
    pub server: usize,
    /// What the node had of each direct conversation at the last sign-in (`welcome.dms`):
    /// where to catch up from, after a reconnect, in one that showed nothing since.
    pub dm_marks: BTreeMap<String, Cursor>,
    next_ref: u64,
}

impl Console {
    pub fn new() -> Console {
        Console::default()
    }

    fn reff(&mut self) -> Option<String> {
        self.next_ref += 1;
        let r = format!("c{}", self.next_ref);
        self.outstanding.insert(r.clone(), ());
        Some(r)
    }

    /// Turns one line of input into an action.
    pub fn input(&mut self, line: &str) -> Action {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Action::Print(Vec::new());
        }
        let Some(cmdline) = line.strip_prefix('/') else {
            return self.say(line.to_string());
        };
        let (cmd, rest) = cmdline.split_once(' ').unwrap_or((cmdline, ""));
        let rest = rest.trim();
        let arg = (!rest.is_empty()).then(|| rest.to_string());
        let usage = |u: &str| Action::Print(vec![format!("! usage: {u}")]);
        match cmd {
            "join" | "j" => match arg {
                Some(room) => {
                    let room = room.trim_start_matches('#').to_string();
                    Action::Send(ClientMsg::Join {
                        room,
                        reff: self.reff(),
                    })
                }
                None => usage("/join ROOM"),
            },
            "leave" | "part" => {
                let room =
                    arg.map(|r| r.trim_start_matches('#').to_string())
                        .or_else(|| match &self.current {
                            Some(Conv::Room(r)) => Some(r.clone()),
                            _ => None,
                        });
                match room {
                    Some(room) => Action::Send(ClientMsg::Leave {
                        room,
                        reff: self.reff(),
                    }),
                    None => usage("/leave ROOM"),
                }
            }
            "msg" | "query" | "m" => {
                let Some(arg) = arg else {
                    return usage("/msg NAME [TEXT]");
                };
                let (name, text) = arg.split_once(' ').unwrap_or((&arg, ""));
                let name = name.trim_start_matches('@').to_string();
                let conv = Conv::Dm(name.clone());
                self.convs.entry(conv.clone()).or_default();
                self.current = Some(conv);
                if text.trim().is_empty() {
                    return Action::Print(vec![format!("* now talking to {name}")]);
                }
                Action::Send(ClientMsg::Send {
                    room: None,
                    to: Some(name),
                    text: text.to_string(),
                    reff: self.reff(),
                })
            }
            "who" => Action::Send(ClientMsg::Who {
                room: arg.map(|r| r.trim_start_matches('#').to_string()),
                reff: self.reff(),
            }),
            "whois" => match arg {
                Some(name) => Action::Send(ClientMsg::Whois {
                    name,
                    reff: self.reff(),
                }),
                None => usage("/whois NAME"),
            },
            "away" => Action::Send(ClientMsg::Away {
                message: arg,
                reff: self.reff(),
            }),
            "rooms" | "list" => Action::Send(ClientMsg::Rooms { reff: self.reff() }),
            "topic" => match &self.current {
                Some(Conv::Room(r)) => Action::Send(ClientMsg::Topic {
                    room: r.clone(),
                    topic: arg,
                    reff: self.reff(),
                }),
                _ => Action::Print(vec!["! /topic works in a room: /join one first".into()]),
            },
            "history" | "h" => {
                let limit = match arg.map(|a| a.parse::<u32>()) {
                    None => 20,
                    Some(Ok(n)) if n > 0 => n,
                    Some(_) => return usage("/history [N]"),
                };
                let Some(conv) = self.current.clone() else {
                    return Action::Print(vec!["! no current room or conversation".into()]);
                };
                let before = self.convs.get(&conv).and_then(|c| c.oldest.clone());
                let (room, with) = match conv {
                    Conv::Room(r) => (Some(r), None),
                    Conv::Dm(n) => (None, Some(n)),
                };
                Action::Send(ClientMsg::History {
                    room,
                    with,
                    before,
                    after: None,
                    limit: Some(limit),
                    reff: self.reff(),
                })
            }
            "contacts" => Action::Send(ClientMsg::Contacts { reff: self.reff() }),
            "contact" => {
                let (verb, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                let (name, after) = split_name(rest.trim());
                match (verb, name) {
                    ("set" | "add", Some(name)) if !after.trim().is_empty() => {
                        Action::Send(ClientMsg::ContactSet {
                            name,
                            phone: after.trim().to_string(),
                            reff: self.reff(),
                        })
                    }
                    ("del" | "delete" | "rm", Some(name)) if after.trim().is_empty() => {
                        Action::Send(ClientMsg::ContactDelete {
                            name,
                            reff: self.reff(),
                        })
                    }
                    _ => usage("/contact set NAME NUMBER | /contact del NAME"),
                }
            }
            "quit" | "exit" | "q" => Action::Quit,
            "help" | "?" => Action::Print(HELP.lines().map(str::to_string).collect()),
            other => Action::Print(vec![format!(
                "! unknown command /{other}; /help lists them"
            )]),
        }
    }

    fn say(&mut self, text: String) -> Action {
        let (room, to) = match &self.current {
            Some(Conv::Room(r)) => (Some(r.clone()), None),
            Some(Conv::Dm(n)) => (None, Some(n.clone())),
            None => {
                return Action::Print(vec![
                    "! no current room or conversation: /join a room or /msg someone".into(),
                ])
            }
        };
        Action::Send(ClientMsg::Send {
            room,
            to,
            text,
            reff: self.reff(),
        })
    }

    /// The conversation a message belongs to, from this user's point of view.
    pub fn conv_of(&self, m: &ChatMessage) -> Conv {
        match (&m.room, &m.to) {
            (Some(r), _) => Conv::Room(r.clone()),
            (None, Some(to)) if !to.eq_ignore_ascii_case(&self.me) => Conv::Dm(to.clone()),
            _ => Conv::Dm(m.from.clone()),
        }
    }

    /// The line showing a message.
    pub fn message_line(&self, m: &ChatMessage) -> String {
        format!("[{}] {}: {}", self.conv_of(m).label(), m.from, m.text)
    }

    /// Records a message as seen; false when it was seen already (a duplicate).
    pub fn see(&mut self, m: &ChatMessage) -> bool {
        let conv = self.conv_of(m);
        let current = self.current.as_ref() == Some(&conv);
        let st = self.convs.entry(conv).or_default();
        if covers(&st.cursor, m) {
            return false;
        }
        advance(&mut st.cursor, m);
        let pos = m.position();
        if st.oldest.as_ref().is_none_or(|o| pos < *o) {
            st.oldest = Some(pos);
        }
        if !current {
            st.unread += 1;
        }
        true
    }

    /// Updates the state for one event and returns the lines that show it.
    pub fn event(&mut self, msg: &ServerMsg) -> Vec<String> {
        if let Some(r) = crate::reply_ref(msg) {
            self.outstanding.remove(r);
        }
        match msg {
            ServerMsg::Welcome {
                node,
                name,
                registered,
                ..
            } => {
                self.me = name.clone();
                let kind = if *registered { "registered" } else { "guest" };
                vec![format!(
                    "* connected to node {node} as {name} ({kind}); /help lists commands"
                )]
            }
            ServerMsg::Message(m) => {
                if self.see(m) {
                    vec![self.message_line(m)]
                } else {
                    Vec::new()
                }
            }
            ServerMsg::Ack {
                queued: true,
                stream,
                ..
            } => {
                // `@a:b`: the recipient is whichever of the two is not this user.
                let me = self.me.to_ascii_lowercase();
                let names = stream.trim_start_matches('@');
                let who = names.split(':').find(|n| *n != me).unwrap_or(names);
                let who = self
                    .convs
                    .keys()
                    .find_map(|c| match c {
                        Conv::Dm(n) if n.eq_ignore_ascii_case(who) => Some(n.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| who.to_string());
                vec![format!(
                    "* {who} is offline; your message is queued for delivery"
                )]
            }
            ServerMsg::Ack { .. } | ServerMsg::Pong { .. } => Vec::new(),
            ServerMsg::Joined {
                room,
                cursor,
                topic,
                members,
                ..
            } => {
                let conv = Conv::Room(room.clone());
                let st = self.convs.entry(conv.clone()).or_default();
                // What was said before joining is history, not news: start from here.
                for (origin, oseq) in cursor {
                    let e = st.cursor.entry(origin.clone()).or_insert(0);
                    *e = (*e).max(*oseq);
                }
                st.members = members.clone();
                st.topic = topic.clone();
                self.current = Some(conv);
                if !self.joined.iter().any(|r| r.eq_ignore_ascii_case(room)) {
                    self.joined.push(room.clone());
                }
                let mut line = format!(
                    "* joined #{room} ({} here: {})",
                    members.len(),
                    members.join(", ")
                );
                if let Some(t) = topic {
                    line.push_str(&format!("; topic: {t}"));
                }
                vec![line]
            }
            ServerMsg::Left { room, .. } => {
                let conv = Conv::Room(room.clone());
                self.convs.remove(&conv);
                self.joined.retain(|r| !r.eq_ignore_ascii_case(room));
                if self.current.as_ref() == Some(&conv) {
                    self.current = self.convs.keys().next().cloned();
                }
                vec![format!("* left #{room}")]
            }
            ServerMsg::Presence { room, name, event } => {
                let st = self.convs.entry(Conv::Room(room.clone())).or_default();
                let verb = match event {
                    PresenceEvent::Join => {
                        if !st.members.contains(name) {
                            st.members.push(name.clone());
                            st.members.sort();
                        }
                        "joined"
                    }
                    PresenceEvent::Leave => {
                        st.members.retain(|m| m != name);
                        "left"
                    }
                };
                vec![format!("* {name} {verb} #{room}")]
            }
            ServerMsg::History {
                messages,
                more,
                stream,
                ..
            } => {
                let mut lines = vec![format!(
                    "* history of {stream}: {} message(s){}",
                    messages.len(),
                    if *more {
                        "; /history for older ones"
                    } else {
                        ""
                    }
                )];
                for m in messages {
                    let conv = self.conv_of(m);
                    let st = self.convs.entry(conv).or_default();
                    let pos = m.position();
                    if st.oldest.as_ref().is_none_or(|o| pos < *o) {
                        st.oldest = Some(pos);
                    }
                    advance(&mut st.cursor, m);
                    lines.push(self.message_line(m));
                }
                lines
            }
            ServerMsg::Rooms { rooms, .. } => {
                if rooms.is_empty() {
                    return vec!["* no rooms yet: /join one to create it".into()];
                }
                let mut lines = vec![format!("* {} room(s):", rooms.len())];
                for r in rooms {
                    let topic = r
                        .topic
                        .as_deref()
                        .map(|t| format!(" - {t}"))
                        .unwrap_or_default();
                    lines.push(format!("*   #{} ({} online){topic}", r.room, r.members));
                }
                lines
            }
            ServerMsg::Topic {
                room, topic, by, ..
            } => {
                if let Some(st) = self.convs.get_mut(&Conv::Room(room.clone())) {
                    st.topic = topic.clone();
                }
                let t = topic.as_deref().unwrap_or("(none)");
                match by {
                    Some(by) => vec![format!("* {by} set the topic of #{room}: {t}")],
                    None => vec![format!("* topic of #{room}: {t}")],
                }
            }
            ServerMsg::Who {
                room, users, away, ..
            } => {
                let place = room
                    .as_ref()
                    .map(|r| format!(" in #{r}"))
                    .unwrap_or_default();
                let names: Vec<String> = users
                    .iter()
                    .map(|u| match away.get(u) {
                        Some(m) => format!("{u} (away: {m})"),
                        None => u.clone(),
                    })
                    .collect();
                vec![format!(
                    "* online{place} ({}): {}",
                    users.len(),
                    names.join(", ")
                )]
            }
            // Someone in one of your rooms, or you on another device (or this one).
            ServerMsg::Away { name, message, .. } => match message {
                Some(m) => vec![format!("* {name} is away: {m}")],
                None => vec![format!("* {name} is back")],
            },
            ServerMsg::Whois {
                name,
                online,
                registered,
                rooms,
                away,
                ..
            } => {
                let state = if *online { "online" } else { "offline" };
                let kind = if *registered { "registered" } else { "guest" };
                let mut line = format!("* {name} is {state} ({kind})");
                if !rooms.is_empty() {
                    let rooms: Vec<String> = rooms.iter().map(|r| format!("#{r}")).collect();
                    line.push_str(&format!(" in {}", rooms.join(", ")));
                }
                if let Some(m) = away {
                    line.push_str(&format!(", away: {m}"));
                }
                vec![line]
            }
            ServerMsg::Error { code, message, .. } => vec![format!("! {code}: {message}")],
            ServerMsg::Shutdown { reason } => {
                vec![format!("* the server is shutting down: {reason}")]
            }
            ServerMsg::Undelivered { to, reason, .. } => {
                vec![format!("! not delivered to {to}: {reason}")]
            }
            ServerMsg::Contacts { contacts, .. } => {
                if contacts.is_empty() {
                    return vec!["* no contacts yet: /contact set NAME NUMBER".into()];
                }
                let mut lines = vec![format!("* {} contact(s):", contacts.len())];
                for c in contacts {
                    let online = if c.online { " (online)" } else { "" };
                    lines.push(format!("*   {}: {}{online}", c.name, c.phone));
                }
                lines
            }
            ServerMsg::Contact { name, phone, .. } => match phone {
                Some(p) => vec![format!("* contact {name}: {p}")],
                None => vec![format!("* contact {name} deleted")],
            },
        }
    }
}

/// A contact name at the start of `s`: one word, or a "quoted" phrase; and what follows.
fn split_name(s: &str) -> (Option<String>, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        return match quoted.split_once('"') {
            Some((name, rest)) if !name.is_empty() => (Some(name.to_string()), rest),
            _ => (None, ""),
        };
    }
    match s.split_once(' ') {
        Some((name, rest)) => (Some(name.to_string()), rest),
        None if !s.is_empty() => (Some(s.to_string()), ""),
        None => (None, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let mut c = Console::new();
        assert!(matches!(c.input("hello"), Action::Print(l) if l[0].starts_with("! no current")));
        assert!(
            matches!(c.input("/join #general"), Action::Send(ClientMsg::Join { room, .. }) if room == "general")
        );
        assert!(matches!(c.input("/msg bob hi there"),
            Action::Send(ClientMsg::Send { to: Some(t), text, .. }) if t == "bob" && text == "hi there"));
        assert!(
            matches!(c.input("again"), Action::Send(ClientMsg::Send { to: Some(t), .. }) if t == "bob")
        );
        assert_eq!(c.input("/quit"), Action::Quit);
        assert!(matches!(c.input("/bogus"), Action::Print(l) if l[0].contains("unknown command")));
        assert!(matches!(c.input("/history x"), Action::Print(l) if l[0].contains("usage")));
        let set = c.input("/contact set \"Juan Pablo\" +55 85 9999");
        assert!(
            matches!(set, Action::Send(ClientMsg::ContactSet { name, phone, .. })
                if name == "Juan Pablo" && phone == "+55 85 9999")
        );
        let del = c.input("/contact del Ana");
        assert!(
            matches!(del, Action::Send(ClientMsg::ContactDelete { name, .. }) if name == "Ana")
        );
        assert!(matches!(c.input("/contact set Ana"), Action::Print(l) if l[0].contains("usage")));
    }

    #[test]
    fn dm_lines_name_the_other_party() {
        let mut c = Console::new();
        c.me = "bob".into();
        let m = ChatMessage {
            id: "n-1".into(),
            stream: "@alice:bob".into(),
            from: "alice".into(),
            room: None,
            to: Some("bob".into()),
            text: "hi".into(),
            ts: 0,
            lamport: 1,
            origin: "n".into(),
            oseq: 1,
        };
        assert_eq!(
            c.event(&ServerMsg::Message(m.clone())),
            vec!["[@alice] alice: hi"]
        );
        // The same message again (e.g. after a resume) is not shown twice.
        assert!(c.event(&ServerMsg::Message(m)).is_empty());
        // A queued acknowledgement names the recipient, not the sender.
        c.input("/msg Alice are you there?");
        let ack = ServerMsg::Ack {
            reff: None,
            id: "n-2".into(),
            stream: "@alice:bob".into(),
            lamport: 2,
            ts: 0,
            queued: true,
        };
        assert_eq!(
            c.event(&ack),
            vec!["* Alice is offline; your message is queued for delivery"]
        );
    }
}
