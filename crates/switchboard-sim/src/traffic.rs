//! What the simulated users do: talk in rooms, send direct messages, edit a contact book.

use rand::Rng;
use switchboard_core::SessionId;
use switchboard_proto::ClientMsg;

use crate::Sim;

impl Sim {
    /// A random session of node `i`, if it has any.
    fn some_session(&mut self, i: usize) -> Option<SessionId> {
        if !self.up(i) || self.nodes[i].sessions.is_empty() {
            return None;
        }
        let sessions: Vec<SessionId> = self.nodes[i].sessions.keys().copied().collect();
        Some(sessions[self.rng.random_range(0..sessions.len())])
    }

    fn send(&mut self, i: usize, session: SessionId, msg: ClientMsg) {
        let now = self.now;
        let mut out = Vec::new();
        self.core(i).handle(session, msg, now, &mut out);
        self.effects(i, out);
    }

    /// A user of node `i` says something in one of its rooms.
    pub(crate) fn say(&mut self, i: usize) {
        let Some(s) = self.some_session(i) else {
            return;
        };
        let rooms: Vec<String> = self.sessions[&s].rooms.iter().cloned().collect();
        let room = rooms[self.rng.random_range(0..rooms.len())].clone();
        self.sent += 1;
        let msg = ClientMsg::Send {
            room: Some(room.trim_start_matches('#').to_string()),
            to: None,
            text: format!("m{}", self.sent),
            reff: None,
        };
        self.send(i, s, msg);
    }

    /// A user of node `i` writes to a user online somewhere (as far as the simulator knows:
    /// the node may not know yet, and refuse it).
    pub(crate) fn say_direct(&mut self, i: usize) {
        let Some(s) = self.some_session(i) else {
            return;
        };
        let others: Vec<String> = self
            .sessions
            .iter()
            .filter(|(id, info)| info.alive && **id != s)
            .map(|(_, info)| info.name.clone())
            .collect();
        if others.is_empty() {
            return;
        }
        let to = others[self.rng.random_range(0..others.len())].clone();
        self.sent += 1;
        let msg = ClientMsg::Send {
            room: None,
            to: Some(to),
            text: format!("d{}", self.sent),
            reff: None,
        };
        self.send(i, s, msg);
    }

    /// Someone edits the shared user's contact book on node `i`: a set or a delete of one of
    /// a few names, so that concurrent edits of the same contact on different nodes happen.
    pub(crate) fn edit_contact(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let name = format!("c{}", self.rng.random_range(0..4));
        let phone = if self.rng.random_bool(0.3) {
            None
        } else {
            Some(format!("{}", self.rng.random_range(100..999)))
        };
        let now = self.now;
        let deleting = phone.is_none();
        let result = self
            .core(i)
            .contact_update("owner", &name, phone, now, None);
        // Deleting a contact this node does not have is refused; anything else must succeed.
        if let Err(e) = result {
            assert!(deleting, "contact update refused: {e}");
        }
    }
}
