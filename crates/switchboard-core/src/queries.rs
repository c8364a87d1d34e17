//! What the server and the gateways read from the core: accounts, who is online, counts.
//! Read-only; every change goes through the commands in core.rs and its siblings.

use switchboard_proto::names::name_key;
use switchboard_proto::Millis;

use crate::{Core, SessionId};

/// Counts of users, rooms and nodes: see [`Core::census`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Users online anywhere in the cluster.
    pub users: usize,
    /// Users online on this node.
    pub local_users: usize,
    pub rooms: usize,
    /// This node and the peers whose link is up.
    pub nodes: usize,
}

impl Core {
    /// The password hash of a registered name, for the server to verify outside the core.
    pub fn account_hash(&self, name: &str) -> Option<String> {
        self.accounts.get(&name_key(name)).map(|(_, h)| h.clone())
    }

    /// A registered name as it was registered (its case), if it is.
    pub fn registered_name(&self, name: &str) -> Option<String> {
        self.accounts.get(&name_key(name)).map(|(n, _)| n.clone())
    }

    /// Who set a room's topic and when (ms), when this run of the node saw it set.
    pub fn topic_setter(&self, room: &str) -> Option<(String, Millis)> {
        let key = switchboard_proto::room_key(room.trim_start_matches('#'));
        self.rooms.get(&key)?.topic_by.clone()
    }

    /// The name of a user online anywhere in the cluster, as they show it.
    pub fn online_name(&self, name: &str) -> Option<String> {
        let key = name_key(name);
        self.users
            .get(&key)
            .map(|u| u.name.clone())
            .or_else(|| self.online_elsewhere(&key))
    }

    /// Whether a name is registered (so whoever speaks under it signed in with its password).
    pub fn is_registered(&self, name: &str) -> bool {
        self.accounts.contains_key(&name_key(name))
    }

    /// How big the service is, for gateways that report it (IRC's LUSERS). Counted, not
    /// listed: every IRC registration asks (the welcome burst), and listing everyone made
    /// 18,000 registrations cost O(n²), 2 ms of CPU each at the end.
    pub fn census(&self) -> Census {
        let elsewhere_only = self
            .remote
            .iter()
            .filter(|(k, nodes)| !nodes.is_empty() && !self.users.contains_key(*k))
            .count();
        Census {
            users: self.users.len() + elsewhere_only,
            local_users: self.users.len(),
            rooms: self.rooms.len(),
            nodes: 1 + self.peer_clocks.len(),
        }
    }

    /// Open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether a session is signed in.
    pub fn has_session(&self, session: SessionId) -> bool {
        self.sessions.contains_key(&session)
    }

    /// Users online.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Ops waiting to be durable.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}
