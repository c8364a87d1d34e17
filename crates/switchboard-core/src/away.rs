//! Away messages: a presence state of the whole service, set by `away` (native) or `AWAY`
//! (IRC), shown by `who`, `whois`, `away` events and IRC's 301, `G` and away-notify.
//!
//! **Away is per user, not per session: the last setting wins.** Any session of the user sets
//! or clears it for all of them, on every node. IRC keeps away per connection, and bouncers
//! show a user away only when all of their connections are; but here a user often has a
//! browser tab open that has no away control, so "away when all sessions say so" would make
//! most users impossible to mark away, and "away when any session says so" would leave a user
//! who types `/away` to come back still away because of another device. One state per user,
//! last writer wins, is what a native user expects: "I said I'm at lunch; I said I'm back".
//!
//! Like the rest of the directory it is soft state, never stored: each node holds the state of
//! its own users ([`crate::core::User::away`]) and announces it with their presence
//! (`UserPresence::away`). Two settings on two nodes meet by their stamp (`Away::at`): a
//! time in milliseconds, never below one past the newest stamp the setting node has seen for
//! the user, so that a later setting wins even across clock skew. A node that hears a newer
//! state for a user who also has sessions here adopts it (and announces it), so the state
//! outlives the node it was set on while the user is online anywhere. It ends with the
//! user's last session in the cluster.

use std::collections::BTreeSet;
use std::sync::Arc;

use switchboard_proto::limits::MAX_AWAY_BYTES;
use switchboard_proto::names::name_key;
use switchboard_proto::peer::Away;
use switchboard_proto::{encode_server, ErrorCode, Millis, ProtoError, ServerMsg};

use crate::core::send;
use crate::{Core, Effect, SessionId};

impl Core {
    /// A user's away message, if they are online somewhere and away (any name case).
    pub fn away_of(&self, name: &str) -> Option<String> {
        self.away_message(&name_key(name))
    }

    /// The session asked for `away` events in its `hello` (the IRC gateway always does, for
    /// away-notify). Sessions that did not ask never get one: older clients cannot read it.
    pub fn want_away_events(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.away_events = true;
        }
    }

    /// `away`: sets (or, with no or an empty message, clears) the user's away message.
    pub(crate) fn away(
        &mut self,
        session: SessionId,
        message: Option<String>,
        reff: Option<String>,
        now: Millis,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtoError> {
        let message = message.filter(|m| !m.trim().is_empty());
        if let Some(m) = &message {
            if m.len() > MAX_AWAY_BYTES {
                return Err(ProtoError::new(
                    ErrorCode::TooLarge,
                    format!("an away message is at most {MAX_AWAY_BYTES} bytes"),
                ));
            }
            // IRC shows it as one parameter of one line.
            if m.chars().any(char::is_control) {
                return Err(ProtoError::new(
                    ErrorCode::BadRequest,
                    "an away message is one line of text",
                ));
            }
        }
        let s = self.sessions.get(&session).expect("checked by handle");
        let (key, name) = (s.key.clone(), s.name.clone());
        let before = self.away_message(&key);
        let newest = self.newest_away(&key).map_or(0, |a| a.at.0);
        let at = (now.max(newest + 1), self.cfg.node.clone());
        if let Some(user) = self.users.get_mut(&key) {
            user.away = Some(Box::new(Away {
                message: message.clone(),
                at,
            }));
        }
        out.push(send(
            session,
            &ServerMsg::Away {
                reff,
                name: name.clone(),
                message: message.clone(),
            },
        ));
        if before != message {
            self.tell_away(&key, &name, Some(session), out);
        }
        self.announce(&key, &name, out);
        Ok(())
    }

    /// The newest away state held for a user: their local one and what other nodes announced.
    fn newest_away(&self, key: &str) -> Option<&Away> {
        let local = self.users.get(key).and_then(|u| u.away.as_deref());
        let remote = self
            .remote
            .get(key)
            .into_iter()
            .flat_map(|nodes| nodes.values().map(|u| &u.away));
        local
            .into_iter()
            .chain(remote)
            .max_by(|a, b| a.at.cmp(&b.at))
    }

    /// A user's away message by key (`None`: here, or offline everywhere).
    pub(crate) fn away_message(&self, key: &str) -> Option<String> {
        self.newest_away(key).and_then(|a| a.message.clone())
    }

    /// A user with sessions here takes on a newer state heard from another node, so that it
    /// stays after that node's sessions are gone. Returns whether it did.
    pub(crate) fn adopt_away(&mut self, key: &str) -> bool {
        let Some(newest) = self.newest_away(key).cloned() else {
            return false;
        };
        match self.users.get_mut(key) {
            Some(user)
                if user
                    .away
                    .as_ref()
                    .map_or(!newest.is_unset(), |a| a.at < newest.at) =>
            {
                user.away = Some(Box::new(newest));
                true
            }
            _ => false,
        }
    }

    /// Tells the sessions that asked for `away` events and share a room with the user (on
    /// any node), and the user's own other sessions, the user's away message as it now is.
    /// `skip` is the setter, which got the reply instead.
    pub(crate) fn tell_away(
        &self,
        key: &str,
        name: &str,
        skip: Option<SessionId>,
        out: &mut Vec<Effect>,
    ) {
        let mut to: BTreeSet<SessionId> = self
            .rooms
            .values()
            .filter(|r| r.users.contains_key(key) || r.remote.contains_key(key))
            .flat_map(|r| r.members.keys().copied())
            .collect();
        if let Some(user) = self.users.get(key) {
            to.extend(user.sessions.iter().copied());
        }
        let message = self.away_message(key);
        self.fan_away(to, skip, name, message, out);
    }

    /// A user just arrived in a room (their first session there, on any node): if they are
    /// away, its members who asked for `away` events learn it right after the `join`.
    pub(crate) fn away_on_join(&self, room: &str, key: &str, name: &str, out: &mut Vec<Effect>) {
        let Some(message) = self.away_message(key) else {
            return;
        };
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let to = r
            .members
            .keys()
            .copied()
            .filter(|id| self.sessions.get(id).is_some_and(|s| s.key != key))
            .collect();
        self.fan_away(to, None, name, Some(message), out);
    }

    fn fan_away(
        &self,
        to: BTreeSet<SessionId>,
        skip: Option<SessionId>,
        name: &str,
        message: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        let to: Arc<[SessionId]> = to
            .into_iter()
            .filter(|id| Some(*id) != skip)
            // Not before its welcome (a registration still on its way to the disk).
            .filter(|id| {
                self.sessions
                    .get(id)
                    .is_some_and(|s| s.away_events && s.ready)
            })
            .collect();
        if to.is_empty() {
            return;
        }
        let frame = encode_server(&ServerMsg::Away {
            reff: None,
            name: name.to_string(),
            message,
        });
        out.push(Effect::Fanout { to, frame });
    }
}
