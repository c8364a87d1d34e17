//! The [`Core`] state machine: its state, its configuration, and the dispatch of commands.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use switchboard_proto::server::{DmInfo, Limits};
use switchboard_proto::{
    encode_server, ChatMessage, ClientMsg, Cursor, ErrorCode, Millis, ProtoError, ServerMsg,
};

use crate::commit::Pending;
use crate::{Effect, Op, OpBody, OpMeta};

/// Most ops that may wait for the disk at once; past it, messages are refused with `busy`
/// until the writer catches up, so memory stays bounded when the disk is slow.
pub const MAX_PENDING: usize = 100_000;

/// A connection's session, numbered by the server.
pub type SessionId = u64;

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name: the origin of its ops and the prefix of its message ids.
    pub node: String,
    /// Most messages held for one offline registered user; further messages to them are
    /// refused with `inbox_full` rather than stored without bound.
    pub inbox_cap: usize,
    /// The limits announced in `welcome`.
    pub limits: Limits,
    /// This run of the node (its start time, say): orders its presence announcements after
    /// those of its earlier runs.
    pub incarnation: u64,
}

/// The durable state a node starts from, read from the store.
#[derive(Debug, Clone, Default)]
pub struct Restore {
    /// Highest Lamport clock of any stored op: the clock never goes back.
    pub clock: u64,
    /// Highest sequence number of this node's own ops.
    pub oseq: u64,
    /// Every origin's highest op sequence number held: the version vector.
    pub vv: BTreeMap<String, u64>,
    /// Registered names, their password hashes, and the stamp of the registration.
    pub accounts: Vec<(String, String, Stamp)>,
    /// Rooms: display name, topic, what is stored of the room, the stamp of the topic.
    pub rooms: Vec<(String, Option<String>, Cursor, Stamp)>,
    /// Conversations: stream, the two display names, what is stored of it.
    pub dms: Vec<(String, String, String, Cursor)>,
    /// Offline inboxes: user key and the message waiting for them, oldest first.
    pub inbox: Vec<(String, ChatMessage)>,
    /// Contact registers: user key, contact name, phone (`None`: deleted), stamp.
    pub contacts: Vec<(String, String, Option<String>, Stamp)>,
}

/// How a `hello` was authenticated by the server before it reached the core.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No password: a guest name.
    Guest,
    /// The password matched the account's hash.
    Verified,
    /// The name had no account: register it with this hash.
    Register(String),
}

pub(crate) struct Session {
    pub name: String,
    pub key: String,
    pub registered: bool,
    /// Keys of the rooms this session is in.
    pub rooms: Vec<String>,
    /// When the session opened: a guest reads conversation history only from then on.
    pub since: Millis,
    /// False while the registration of its name is not yet durable.
    pub ready: bool,
    /// Asked for `away` events in its hello (see away.rs).
    pub away_events: bool,
}

pub(crate) struct User {
    pub name: String,
    pub sessions: Vec<SessionId>,
    /// The user's away state, for all of their sessions (see away.rs). Boxed: most users are
    /// never away, and every signed-in connection pays for this field (docs/benchmarks.md
    /// counts the bytes of an idle connection).
    pub away: Option<Box<switchboard_proto::peer::Away>>,
}

/// The (Lamport clock, origin) of an op: its place in the one order every node agrees on.
pub type Stamp = (u64, String);

pub(crate) struct Room {
    pub name: String,
    pub topic: Option<String>,
    /// The stamp of the op that set the topic: a later one wins (last writer wins).
    pub topic_at: Stamp,
    /// Who set the topic and when, if this run of the node saw it set (IRC's 333).
    pub topic_by: Option<(String, Millis)>,
    /// Every message delivered so far (on disk, and sent to the members).
    pub cursor: Cursor,
    /// Member sessions.
    pub members: BTreeMap<SessionId, ()>,
    /// Member users by key: display name and how many of their sessions are in.
    pub users: BTreeMap<String, (String, u32)>,
    /// Members on other nodes by key: display name and on how many nodes.
    pub remote: BTreeMap<String, (String, u32)>,
    /// The member list as shared by fan-outs, rebuilt after a membership change.
    pub cache: Option<Arc<[SessionId]>>,
    /// With scoped rooms: per origin, the newest of its messages in this room applied here
    /// (ahead of `cursor`, which moves at delivery).
    pub received: Cursor,
}

pub(crate) struct Dm {
    pub a: String,
    pub b: String,
    /// Every message delivered so far.
    pub cursor: Cursor,
    /// With scoped streams: per origin, the newest of its messages here applied (scoped.rs).
    pub received: Cursor,
}

pub(crate) struct Queued {
    pub origin: String,
    pub oseq: u64,
    pub frame: Bytes,
    pub durable: bool,
}

/// The chat core. See the crate documentation.
pub struct Core {
    pub(crate) cfg: Config,
    pub(crate) clock: u64,
    pub(crate) oseq: u64,
    pub(crate) sessions: HashMap<SessionId, Session>,
    pub(crate) users: HashMap<String, User>,
    pub(crate) accounts: HashMap<String, (String, String)>,
    /// The stamp of each account's registration: the earliest one wins a name.
    pub(crate) account_at: HashMap<String, Stamp>,
    /// Every origin's highest op applied here.
    pub(crate) vv: BTreeMap<String, u64>,
    /// Users online on other nodes: user key -> node -> what that node announced.
    pub(crate) remote: HashMap<String, BTreeMap<String, crate::presence::RemoteUser>>,
    /// The newest announcement version seen per (node, user key).
    pub(crate) heard: HashMap<(String, String), (u64, u64)>,
    /// Announcements made by this node so far.
    pub(crate) announced: std::cell::Cell<u64>,
    pub(crate) rooms: HashMap<String, Room>,
    pub(crate) dms: HashMap<String, Dm>,
    pub(crate) dms_by_user: HashMap<String, Vec<String>>,
    pub(crate) inbox: HashMap<String, VecDeque<Queued>>,
    /// What waits on each op handed to the writer, in the same order as the ops, with the
    /// op's origin and sequence number.
    pub(crate) pending: VecDeque<(String, u64, Pending)>,
    /// What this node has on disk: origin -> highest op sequence.
    pub(crate) stored: BTreeMap<String, u64>,
    /// Acknowledgements of this node's messages waiting for a peer to store them, by oseq.
    pub(crate) acks_waiting: BTreeMap<u64, (SessionId, Bytes)>,
    /// For each peer, the highest of this node's ops it has stored.
    pub(crate) peer_stored: BTreeMap<String, u64>,
    /// Ops emitted but not yet taken by the store writer, in sequence order.
    pub(crate) outgoing: Vec<Op>,
    /// Durable messages waiting to be delivered in (Lamport, origin) order: see order.rs.
    pub(crate) held: BTreeMap<Stamp, crate::order::Held>,
    /// The last message delivered in order.
    pub(crate) frontier: Stamp,
    /// Peers whose link is up, with the highest clock each has vouched for.
    pub(crate) peer_clocks: BTreeMap<String, u64>,
    /// The safe clock last announced to peers.
    pub(crate) clock_told: u64,
    /// Ops of other nodes waiting for this node's disk.
    pub(crate) pending_remote: usize,
    /// The highest clock stored with a durable batch: the most this node may vouch for, so
    /// that after a crash its clock cannot fall below what it promised.
    pub(crate) durable_clock: u64,
    /// Contact books: user key -> contact name -> register.
    pub(crate) books: HashMap<String, BTreeMap<String, crate::contacts::Entry>>,
    /// Each peer's version vector as of its last heartbeat.
    pub(crate) peer_vv: BTreeMap<String, BTreeMap<String, u64>>,
    /// This node's version vector when each peer's last heartbeat came (anti-entropy).
    pub(crate) vv_at_heartbeat: BTreeMap<String, BTreeMap<String, u64>>,
    /// How many of this node's ops each peer held at its previous heartbeat (see
    /// `ask_what_is_stored`).
    pub(crate) held_at_heartbeat: BTreeMap<String, u64>,
    /// With a backplane that stores ops itself (NATS JetStream) and is reachable: the highest
    /// of this node's ops it has acknowledged. `None` on the mesh or while it is unreachable.
    pub(crate) backplane_stored: Option<u64>,
    /// Room and direct messages travel by interest (a NATS backplane): see scoped.rs.
    pub(crate) scoped: bool,
    /// Ops handed to the writer, and ops it made durable, since start.
    pub(crate) ops_pushed: u64,
    pub(crate) ops_committed: u64,
}

impl Core {
    /// Builds the core from the store's durable state.
    pub fn new(cfg: Config, restore: Restore) -> Core {
        let mut core = Core {
            cfg,
            clock: restore.clock,
            oseq: restore.oseq,
            sessions: HashMap::new(),
            users: HashMap::new(),
            accounts: HashMap::new(),
            account_at: HashMap::new(),
            vv: restore.vv.clone(),
            remote: HashMap::new(),
            heard: HashMap::new(),
            announced: std::cell::Cell::new(0),
            rooms: HashMap::new(),
            dms: HashMap::new(),
            dms_by_user: HashMap::new(),
            inbox: HashMap::new(),
            pending: VecDeque::new(),
            stored: restore.vv,
            acks_waiting: BTreeMap::new(),
            peer_stored: BTreeMap::new(),
            outgoing: Vec::new(),
            held: BTreeMap::new(),
            frontier: (0, String::new()),
            peer_clocks: BTreeMap::new(),
            clock_told: 0,
            peer_vv: BTreeMap::new(),
            vv_at_heartbeat: BTreeMap::new(),
            held_at_heartbeat: BTreeMap::new(),
            books: HashMap::new(),
            durable_clock: restore.clock,
            pending_remote: 0,
            backplane_stored: None,
            scoped: false,
            ops_pushed: 0,
            ops_committed: 0,
        };
        for (name, hash, at) in restore.accounts {
            let key = name.to_ascii_lowercase();
            core.account_at.insert(key.clone(), at);
            core.accounts.insert(key, (name, hash));
        }
        for (name, topic, cursor, at) in restore.rooms {
            let mut room = Room::new(name.clone());
            room.topic = topic;
            room.topic_at = at;
            room.cursor = cursor;
            core.rooms.insert(switchboard_proto::room_key(&name), room);
        }
        for (stream, a, b, cursor) in restore.dms {
            core.add_dm(stream, a, b, cursor);
        }
        core.restore_contacts(restore.contacts);
        for (user, msg) in restore.inbox {
            let frame = encode_server(&ServerMsg::Message(msg.clone()));
            core.inbox.entry(user).or_default().push_back(Queued {
                origin: msg.origin,
                oseq: msg.oseq,
                frame,
                durable: true,
            });
        }
        core
    }

    /// The Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Merges a clock seen from a peer (seed 000's rule): the local clock becomes the larger
    /// of the two, so every later op is ordered after what the peer had done.
    pub fn observe_clock(&mut self, clock: u64) {
        self.clock = self.clock.max(clock);
    }

    /// Handles one request of an open session (anything but `hello`, which goes to
    /// [`Core::hello`], and `history`, which the server reads from the store after asking
    /// [`Core::history_stream`]).
    pub fn handle(
        &mut self,
        session: SessionId,
        msg: ClientMsg,
        now: Millis,
        out: &mut Vec<Effect>,
    ) {
        if !self.sessions.contains_key(&session) {
            out.push(error(
                session,
                ErrorCode::NotReady,
                "say hello first",
                msg.reff(),
            ));
            return;
        }
        let reff = msg.reff().map(str::to_string);
        let result = match msg {
            ClientMsg::Hello { .. } => Err(ProtoError::new(
                ErrorCode::NotReady,
                "hello was already said",
            )),
            ClientMsg::Join { room, reff } => self.join(session, &room, reff, now, out),
            ClientMsg::Leave { room, reff } => self.leave(session, &room, reff, out),
            ClientMsg::Rooms { reff } => {
                self.rooms_list(session, reff, out);
                Ok(())
            }
            ClientMsg::Topic { room, topic, reff } => {
                self.topic(session, &room, topic, reff, now, out)
            }
            ClientMsg::Send {
                room,
                to,
                text,
                reff,
            } => self.send(session, room, to, text, reff, now),
            ClientMsg::Who { room, reff } => self.who(session, room, reff, out),
            ClientMsg::Whois { name, reff } => {
                self.whois(session, &name, reff, out);
                Ok(())
            }
            ClientMsg::Away { message, reff } => self.away(session, message, reff, now, out),
            ClientMsg::Ping { reff } => {
                out.push(send(session, &ServerMsg::Pong { reff }));
                Ok(())
            }
            ClientMsg::History { .. } => Err(ProtoError::new(
                ErrorCode::Internal,
                "history is served by the store, not the core",
            )),
            ClientMsg::Bye { .. } => {
                self.close(session, out);
                Ok(())
            }
            msg @ (ClientMsg::Contacts { .. }
            | ClientMsg::ContactSet { .. }
            | ClientMsg::ContactDelete { .. }) => self.contacts_request(session, msg, now, out),
        };
        if let Err(e) = result {
            out.push(error(session, e.code, &e.message, reff.as_deref()));
        }
    }

    /// Allocates the metadata of a new op of this node.
    pub(crate) fn next_meta(&mut self) -> OpMeta {
        self.oseq += 1;
        self.clock += 1;
        OpMeta {
            origin: self.cfg.node.clone(),
            oseq: self.oseq,
            lamport: self.clock,
        }
    }

    /// A new message of this node: its op metadata, the message, its frame, and the frame of
    /// the sender's acknowledgement. `place` is (room, recipient): one of the two.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_message(
        &mut self,
        stream: String,
        from: String,
        place: (Option<String>, Option<String>),
        text: String,
        now: Millis,
        reff: Option<String>,
        queued: bool,
    ) -> (OpMeta, ChatMessage, Bytes, Bytes) {
        let meta = self.next_meta();
        let msg = ChatMessage {
            id: format!("{}-{}", meta.origin, meta.oseq),
            stream,
            from,
            room: place.0,
            to: place.1,
            text,
            ts: now,
            lamport: meta.lamport,
            origin: meta.origin.clone(),
            oseq: meta.oseq,
        };
        let frame = encode_server(&ServerMsg::Message(msg.clone()));
        let ack = encode_server(&ServerMsg::Ack {
            reff,
            id: msg.id.clone(),
            stream: msg.stream.clone(),
            lamport: meta.lamport,
            ts: now,
            queued,
        });
        (meta, msg, frame, ack)
    }

    /// Emits an op for persistence and records what waits for it.
    pub(crate) fn persist(&mut self, body: OpBody, pending: Pending) {
        let meta = self.next_meta();
        self.push_op(Op { meta, body }, pending);
    }

    /// Queues an op for the store writer and records what waits for it.
    pub(crate) fn push_op(&mut self, op: Op, pending: Pending) {
        let remote = op.meta.origin != self.cfg.node;
        // With scoped streams a room message or direct message is not part of its origin's
        // version vector, which counts only what every node receives (scoped.rs); this
        // node's own entry too, or peers would always seem to lack its scoped messages.
        if !(self.scoped && pending.is_scoped()) {
            let held = self.vv.entry(op.meta.origin.clone()).or_insert(0);
            *held = (*held).max(op.meta.oseq);
        }
        if remote {
            self.pending_remote += 1;
        }
        self.ops_pushed += 1;
        self.pending
            .push_back((op.meta.origin.clone(), op.meta.oseq, pending));
        self.outgoing.push(op);
    }

    /// Takes the ops waiting to be written, oldest first. The writer makes them durable in
    /// this order and then calls [`Core::committed`] with how many it wrote.
    pub fn take_ops(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.outgoing)
    }

    /// [`Core::take_ops`] into `spare`, an emptied batch whose buffer the core keeps for the
    /// next ops. Under load a batch holds tens of thousands of ops: growing a new one from
    /// nothing each time cost the node 7% of its CPU in reallocations and page faults.
    pub fn take_ops_into(&mut self, spare: &mut Vec<Op>) {
        debug_assert!(spare.is_empty(), "the spare batch still holds ops");
        spare.clear();
        std::mem::swap(&mut self.outgoing, spare);
    }

    /// Whether ops wait for the writer.
    pub fn has_ops(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether so many ops wait for the disk that new messages should be refused for now.
    pub(crate) fn overloaded(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    pub(crate) fn add_dm(&mut self, stream: String, a: String, b: String, cursor: Cursor) {
        for k in [a.to_ascii_lowercase(), b.to_ascii_lowercase()] {
            let list = self.dms_by_user.entry(k).or_default();
            if !list.contains(&stream) {
                list.push(stream.clone());
            }
        }
        self.dms.insert(
            stream,
            Dm {
                a,
                b,
                cursor,
                received: Cursor::new(),
            },
        );
    }

    /// The conversations of a user, for `welcome`.
    pub(crate) fn dm_infos(&self, key: &str) -> Vec<DmInfo> {
        let Some(streams) = self.dms_by_user.get(key) else {
            return Vec::new();
        };
        streams
            .iter()
            .filter_map(|s| {
                let dm = self.dms.get(s)?;
                let with = if dm.a.eq_ignore_ascii_case(key) {
                    &dm.b
                } else {
                    &dm.a
                };
                Some(DmInfo {
                    with: with.clone(),
                    stream: s.clone(),
                    cursor: dm.cursor.clone(),
                })
            })
            .collect()
    }
}

impl Room {
    pub(crate) fn new(name: String) -> Room {
        Room {
            name,
            topic: None,
            topic_at: (0, String::new()),
            topic_by: None,
            cursor: Cursor::new(),
            members: BTreeMap::new(),
            users: BTreeMap::new(),
            remote: BTreeMap::new(),
            cache: None,
            received: Cursor::new(),
        }
    }

    /// The member sessions as a shared slice, rebuilt only after membership changed.
    /// Every member's name, on this node or another, in name order.
    pub(crate) fn member_names(&self) -> Vec<String> {
        let mut all: BTreeMap<&String, &String> =
            self.users.iter().map(|(k, (n, _))| (k, n)).collect();
        for (k, (n, _)) in &self.remote {
            all.entry(k).or_insert(n);
        }
        all.into_values().cloned().collect()
    }

    pub(crate) fn member_slice(&mut self) -> Arc<[SessionId]> {
        if let Some(c) = &self.cache {
            return c.clone();
        }
        let slice: Arc<[SessionId]> = self.members.keys().copied().collect();
        self.cache = Some(slice.clone());
        slice
    }
}

/// An effect sending one message to one session.
pub(crate) fn send(session: SessionId, msg: &ServerMsg) -> Effect {
    Effect::Send {
        to: session,
        frame: encode_server(msg),
    }
}

/// An effect sending an error frame to one session.
pub(crate) fn error(
    session: SessionId,
    code: ErrorCode,
    message: &str,
    reff: Option<&str>,
) -> Effect {
    send(
        session,
        &ServerMsg::Error {
            code,
            message: message.to_string(),
            reff: reff.map(str::to_string),
        },
    )
}

/// The refusal while the disk is behind (on the IRC face, 263 RPL_TRYAGAIN with this text).
pub(crate) fn busy() -> ProtoError {
    ProtoError::new(
        ErrorCode::Busy,
        "the node is writing a backlog to disk; retry shortly",
    )
}
