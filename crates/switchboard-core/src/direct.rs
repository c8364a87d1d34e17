//! Direct messages by name (seed 002's directory): delivery to every session of the
//! recipient, `not_found` for unknown names, and the offline inbox of registered users.

use switchboard_proto::{
    dm_stream, names::name_key, validate_name, Cursor, ErrorCode, Millis, ProtoError,
};

use crate::commit::Pending;
use crate::core::{busy, Queued};
use crate::{Core, Effect, InboxEntry, Op, OpBody, SessionId};

impl Core {
    pub(crate) fn send_direct(
        &mut self,
        session: SessionId,
        to: &str,
        text: String,
        reff: Option<String>,
        now: Millis,
    ) -> Result<(), ProtoError> {
        if self.overloaded() {
            return Err(busy());
        }
        validate_name(to).map_err(|e| ProtoError::new(ErrorCode::InvalidName, e.to_string()))?;
        let to_key = name_key(to);
        let online = self
            .users
            .get(&to_key)
            .map(|u| u.name.clone())
            .or_else(|| self.online_elsewhere(&to_key));
        let account = self.accounts.get(&to_key).map(|(n, _)| n.clone());
        let Some(to_name) = online.clone().or(account.clone()) else {
            return Err(ProtoError::new(
                ErrorCode::NotFound,
                format!("no user named {to}"),
            ));
        };
        let queued_for = (online.is_none() && account.is_some()).then(|| to_key.clone());
        if queued_for.is_some()
            && self.inbox.get(&to_key).map_or(0, |q| q.len()) >= self.cfg.inbox_cap
        {
            return Err(ProtoError::new(
                ErrorCode::InboxFull,
                format!("{to_name} is offline and has too many messages waiting"),
            ));
        }
        let s = &self.sessions[&session];
        let (from, from_key) = (s.name.clone(), s.key.clone());
        let stream = dm_stream(&from, &to_name);
        if !self.dms.contains_key(&stream) {
            self.add_dm(stream.clone(), from.clone(), to_name.clone(), Cursor::new());
        }
        let queued = queued_for.is_some();
        let (meta, msg, frame, ack) = self.new_message(
            stream.clone(),
            from,
            (None, Some(to_name)),
            text,
            now,
            reff,
            queued,
        );
        if let Some(user) = &queued_for {
            self.inbox
                .entry(user.clone())
                .or_default()
                .push_back(Queued {
                    origin: meta.origin.clone(),
                    oseq: meta.oseq,
                    frame: frame.clone(),
                    durable: false,
                });
        }
        let pending = Pending::DirectMessage {
            stream,
            lamport: meta.lamport,
            origin: meta.origin.clone(),
            oseq: meta.oseq,
            frame,
            ack: Some((session, ack)),
            users: [from_key, to_key],
            queued_for: queued_for.clone(),
        };
        let body = OpBody::Message { msg, queued_for };
        self.push_op(Op { meta, body }, pending);
        Ok(())
    }

    /// Delivers a signing-in user's waiting messages to their new session, and records that
    /// they were delivered. Entries whose op is not yet durable stay: they are delivered live
    /// when it is.
    pub(crate) fn deliver_inbox(&mut self, session: SessionId, user: &str, out: &mut Vec<Effect>) {
        let Some(queue) = self.inbox.get_mut(user) else {
            return;
        };
        let mut delivered = Vec::new();
        queue.retain(|q| {
            if q.durable {
                out.push(Effect::Send {
                    to: session,
                    frame: q.frame.clone(),
                });
                delivered.push(InboxEntry {
                    origin: q.origin.clone(),
                    oseq: q.oseq,
                });
                false
            } else {
                true
            }
        });
        if queue.is_empty() {
            self.inbox.remove(user);
        }
        if !delivered.is_empty() {
            let body = OpBody::InboxDelivered {
                user: user.to_string(),
                entries: delivered,
            };
            self.persist(body, Pending::Nothing);
        }
    }

    /// Messages waiting in a user's offline inbox.
    pub fn inbox_len(&self, user: &str) -> usize {
        self.inbox.get(&name_key(user)).map_or(0, |q| q.len())
    }
}

impl Core {
    /// A gateway on this node could not hand `to` the direct message `id` from `from` (seed
    /// 002's relay client stopped answering): `from` is told on every node where it has
    /// sessions. The message itself stays in the conversation's history.
    pub fn undelivered(
        &mut self,
        from: &str,
        to: &str,
        id: &str,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        self.tell_undelivered(from, to, id, reason, out);
        if !self.peer_clocks.is_empty() {
            out.push(Effect::ToPeers(
                switchboard_proto::peer::PeerMsg::Undelivered {
                    from: from.to_string(),
                    to: to.to_string(),
                    id: id.to_string(),
                    reason: reason.to_string(),
                },
            ));
        }
    }

    /// Tells this node's sessions of `from` that a message of theirs was not delivered.
    pub(crate) fn tell_undelivered(
        &self,
        from: &str,
        to: &str,
        id: &str,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        let Some(user) = self.users.get(&name_key(from)) else {
            return;
        };
        let msg = switchboard_proto::ServerMsg::Undelivered {
            to: to.to_string(),
            id: id.to_string(),
            reason: reason.to_string(),
        };
        for s in user.sessions.iter().filter(|s| self.is_ready(**s)) {
            out.push(crate::core::send(*s, &msg));
        }
    }
}
