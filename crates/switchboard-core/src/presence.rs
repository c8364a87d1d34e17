//! The cluster-wide directory: every node announces its own users (online, registered, since
//! when, in which rooms), and merges what the others announce, so that `who`, `whois`, room
//! member lists, presence events and direct messages cover the whole cluster. It is soft
//! state: a node declared down takes its users with it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use switchboard_proto::peer::{PeerMsg, UserPresence};
use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{encode_server, room_key, ErrorCode};

use crate::directory::presence;
use crate::{Core, Effect};

/// A user as announced by one other node.
#[derive(Debug, Clone)]
pub(crate) struct RemoteUser {
    pub name: String,
    /// Room keys.
    pub rooms: BTreeSet<String>,
    /// The user's away state as that node holds it (see away.rs).
    pub away: switchboard_proto::peer::Away,
}

impl Core {
    /// This node's users, for the snapshot a peer gets when its link comes up, in the order
    /// of their keys: the users are in a randomly keyed hash map, and a node's output must
    /// depend only on its inputs, so that a simulated run replays exactly.
    pub fn local_presence(&self) -> Vec<UserPresence> {
        let mut keys: Vec<&String> = self.users.keys().collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|k| self.presence_of(k))
            .collect()
    }

    /// A local user's state as announced to peers; `None` if not online here.
    fn presence_of(&self, key: &str) -> Option<UserPresence> {
        let user = self.users.get(key)?;
        let mut rooms = BTreeSet::new();
        let (mut registered, mut since) = (false, u64::MAX);
        for s in user.sessions.iter().filter_map(|id| self.sessions.get(id)) {
            registered |= s.registered;
            since = since.min(s.since);
            for r in &s.rooms {
                if let Some(room) = self.rooms.get(r) {
                    rooms.insert(room.name.clone());
                }
            }
        }
        Some(UserPresence {
            name: user.name.clone(),
            online: true,
            registered,
            since,
            rooms: rooms.into_iter().collect(),
            version: self.next_version(),
            away: user.away.as_deref().cloned().unwrap_or_default(),
        })
    }

    fn next_version(&self) -> (u64, u64) {
        let n = self.announced.get() + 1;
        self.announced.set(n);
        (self.cfg.incarnation, n)
    }

    /// Announces a local user's current state (online with its rooms, or gone).
    pub(crate) fn announce(&self, key: &str, name: &str, out: &mut Vec<Effect>) {
        let p = self.presence_of(key).unwrap_or_else(|| UserPresence {
            name: name.to_string(),
            online: false,
            registered: false,
            since: 0,
            rooms: Vec::new(),
            version: self.next_version(),
            away: Default::default(),
        });
        out.push(Effect::ToPeers(PeerMsg::Presence {
            snapshot: false,
            users: vec![p],
        }));
    }

    /// Whether a user is online on another node; their display name if so.
    pub(crate) fn online_elsewhere(&self, key: &str) -> Option<String> {
        self.remote
            .get(key)
            .and_then(|nodes| nodes.values().next())
            .map(|u| u.name.clone())
    }

    /// Every user online anywhere in the cluster.
    pub(crate) fn everyone(&self) -> BTreeMap<String, String> {
        let mut all: BTreeMap<String, String> = self
            .users
            .iter()
            .map(|(k, u)| (k.clone(), u.name.clone()))
            .collect();
        for (k, nodes) in &self.remote {
            if let Some(u) = nodes.values().next() {
                all.entry(k.clone()).or_insert_with(|| u.name.clone());
            }
        }
        all
    }

    /// The rooms a user is in on other nodes (display names).
    pub(crate) fn remote_rooms(&self, key: &str) -> Vec<String> {
        let mut rooms: BTreeSet<String> = BTreeSet::new();
        for u in self.remote.get(key).into_iter().flat_map(|n| n.values()) {
            for r in &u.rooms {
                if let Some(room) = self.rooms.get(r) {
                    rooms.insert(room.name.clone());
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Merges a peer's announcement of its users.
    pub fn peer_presence(
        &mut self,
        node: &str,
        snapshot: bool,
        users: Vec<UserPresence>,
        out: &mut Vec<Effect>,
    ) {
        if snapshot {
            let known = self.announced_by(node);
            let fresh: BTreeSet<String> =
                users.iter().map(|u| u.name.to_ascii_lowercase()).collect();
            for key in known.into_iter().filter(|k| !fresh.contains(k)) {
                self.set_remote(node, &key, None, out);
            }
        }
        for p in users {
            let key = p.name.to_ascii_lowercase();
            let heard = self
                .heard
                .entry((node.to_string(), key.clone()))
                .or_insert((0, 0));
            if p.version <= *heard {
                continue;
            }
            *heard = p.version;
            if !p.online {
                self.set_remote(node, &key, None, out);
                continue;
            }
            self.resolve_guest_conflict(node, &key, &p, out);
            let rooms = p.rooms.iter().map(|r| room_key(r)).collect();
            let user = RemoteUser {
                name: p.name,
                rooms,
                away: p.away,
            };
            self.set_remote(node, &key, Some(user), out);
        }
    }

    /// A peer is down: its users leave the directory and their rooms.
    pub fn peer_gone(&mut self, node: &str, out: &mut Vec<Effect>) {
        for key in self.announced_by(node) {
            self.set_remote(node, &key, None, out);
        }
    }

    /// The keys of the users `node` announced, in order (`remote` is a randomly keyed hash
    /// map: see [`Core::local_presence`]).
    fn announced_by(&self, node: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, nodes)| nodes.contains_key(node))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Two guests hold the same name on two nodes (taken on both sides of a partition, or at
    /// the same moment): as IRC servers do with timestamps, the one who signed in first keeps
    /// it (ties go to the smaller node name), and the other is told and disconnected. Both
    /// nodes reach the same verdict from the same announcements.
    fn resolve_guest_conflict(
        &mut self,
        node: &str,
        key: &str,
        p: &UserPresence,
        out: &mut Vec<Effect>,
    ) {
        let Some(user) = self.users.get(key) else {
            return;
        };
        let guests: Vec<_> = user
            .sessions
            .iter()
            .filter_map(|id| self.sessions.get(id).map(|s| (*id, s)))
            .filter(|(_, s)| !s.registered)
            .map(|(id, s)| (id, s.since))
            .collect();
        if guests.is_empty() || p.registered {
            return;
        }
        let mine = guests
            .iter()
            .map(|(_, since)| *since)
            .min()
            .unwrap_or(u64::MAX);
        let local_wins = (mine, self.cfg.node.as_str()) < (p.since, node);
        if !local_wins {
            for (session, _) in guests {
                out.push(Effect::Close {
                    session,
                    code: ErrorCode::NameInUse,
                    reason: format!(
                        "{} was taken on node {node} before you took it here; sign in with another name",
                        p.name
                    ),
                });
            }
        }
    }

    /// Sets (or clears) what `node` says of user `key`, and tells local room members when the
    /// user's cluster-wide presence in a room or away state changes.
    fn set_remote(
        &mut self,
        node: &str,
        key: &str,
        user: Option<RemoteUser>,
        out: &mut Vec<Effect>,
    ) {
        let away_before = self.away_message(key);
        let old = self
            .remote
            .get_mut(key)
            .and_then(|nodes| nodes.remove(node));
        let old_rooms = old.as_ref().map(|u| u.rooms.clone()).unwrap_or_default();
        let new_rooms = user.as_ref().map(|u| u.rooms.clone()).unwrap_or_default();
        let name = user
            .as_ref()
            .or(old.as_ref())
            .map(|u| u.name.clone())
            .unwrap_or_default();
        if let Some(u) = user {
            self.remote
                .entry(key.to_string())
                .or_default()
                .insert(node.to_string(), u);
        } else if self.remote.get(key).is_some_and(|n| n.is_empty()) {
            self.remote.remove(key);
        }
        if self.adopt_away(key) {
            self.announce(key, &name, out);
        }
        // Told before the room changes, to the rooms the user was in; not when the user just
        // left the whole cluster (members see them leave instead).
        let online = self.users.contains_key(key) || self.remote.contains_key(key);
        if online && self.away_message(key) != away_before {
            self.tell_away(key, &name, None, out);
        }
        for r in new_rooms.difference(&old_rooms) {
            self.rooms
                .entry(r.clone())
                .or_insert_with(|| crate::core::Room::new(r.trim_start_matches('#').to_string()));
            self.remote_room_change(r, key, &name, 1, out);
        }
        for r in old_rooms.difference(&new_rooms) {
            self.remote_room_change(r, key, &name, -1, out);
        }
    }

    fn remote_room_change(
        &mut self,
        room: &str,
        key: &str,
        name: &str,
        delta: i32,
        out: &mut Vec<Effect>,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let local = r.users.contains_key(key);
        let before = r.remote.get(key).map_or(0, |(_, n)| *n);
        let after = (before as i32 + delta).max(0) as u32;
        if after == 0 {
            r.remote.remove(key);
        } else {
            r.remote.insert(key.to_string(), (name.to_string(), after));
        }
        let event = match (local, before, after) {
            (false, 0, a) if a > 0 => PresenceEvent::Join,
            (false, b, 0) if b > 0 => PresenceEvent::Leave,
            _ => return,
        };
        if r.members.is_empty() {
            return;
        }
        let to: Arc<[_]> = r.member_slice();
        let frame = encode_server(&presence(r.name.clone(), name, event));
        out.push(Effect::Fanout { to, frame });
        if event == PresenceEvent::Join {
            self.away_on_join(room, key, name, out);
        }
    }
}
