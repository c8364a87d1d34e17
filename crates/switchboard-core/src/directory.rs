//! The directory: who holds which name on which sessions, sign-in and sign-out, `who`,
//! `whois`, and access to conversation history.

use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{
    dm_stream, encode_server, names::name_key, validate_name, validate_room, ErrorCode, Millis,
    ProtoError, ServerMsg, PROTOCOL_VERSION,
};

use crate::commit::Pending;
use crate::core::{error, send, Auth, Session, User};
use crate::{Core, Effect, OpBody, SessionId};

/// Most names a `who` answer lists; a node with more users online answers with the first
/// ones in name order.
pub const WHO_MAX: usize = 1000;

impl Core {
    /// Opens a session for a name. The server has already checked the protocol version and,
    /// for a registered name, the password. On success the session gets `welcome` (after the
    /// registration is durable, when it registers); on failure an error and a close.
    pub fn hello(
        &mut self,
        session: SessionId,
        name: &str,
        auth: Auth,
        now: Millis,
        out: &mut Vec<Effect>,
    ) {
        if let Err(e) = validate_name(name) {
            return refuse(session, ErrorCode::InvalidName, &e.to_string(), out);
        }
        let key = name_key(name);
        let account = self.accounts.get(&key).map(|(n, _)| n.clone());
        let online = self.users.get(&key).map(|u| u.name.clone()).or_else(|| {
            // A guest elsewhere in the cluster holds the name too.
            self.online_elsewhere(&key)
                .filter(|_| !self.accounts.contains_key(&key))
        });
        let (display, registered) = match (&auth, account) {
            (Auth::Guest, Some(_)) => {
                return refuse(
                    session,
                    ErrorCode::AuthFailed,
                    "this name is registered: a password is needed",
                    out,
                )
            }
            (Auth::Guest, None) if online.is_some() => {
                return refuse(
                    session,
                    ErrorCode::NameInUse,
                    "someone else is using this name",
                    out,
                )
            }
            (Auth::Guest, None) => (name.to_string(), false),
            (Auth::Verified, Some(display)) => (display, true),
            (Auth::Verified, None) => {
                return refuse(session, ErrorCode::AuthFailed, "no such account", out)
            }
            (Auth::Register(_), Some(_)) => {
                return refuse(
                    session,
                    ErrorCode::AuthFailed,
                    "this name was registered meanwhile; sign in with its password",
                    out,
                )
            }
            (Auth::Register(_), None) if online.is_some() => {
                return refuse(
                    session,
                    ErrorCode::NameInUse,
                    "someone else is using this name",
                    out,
                )
            }
            (Auth::Register(_), None) => (name.to_string(), true),
        };
        let first = !self.users.contains_key(&key);
        self.sessions.insert(
            session,
            Session {
                name: display.clone(),
                key: key.clone(),
                registered,
                rooms: Vec::new(),
                since: now,
                ready: !matches!(auth, Auth::Register(_)),
                away_events: false,
            },
        );
        let user = self.users.entry(key.clone()).or_insert_with(|| User {
            name: display.clone(),
            sessions: Vec::new(),
            away: None,
        });
        user.sessions.push(session);
        if first {
            // Away already set on another node, where the user is online too.
            self.adopt_away(&key);
        }
        if let Auth::Register(hash) = auth {
            // The name is held from now on; the welcome waits until the account is on disk.
            self.accounts
                .insert(key.clone(), (display.clone(), hash.clone()));
            let body = OpBody::Account {
                name: display,
                hash,
                ts: now,
            };
            let meta = self.next_meta();
            self.account_at
                .insert(key, (meta.lamport, meta.origin.clone()));
            self.push_op(crate::Op { meta, body }, Pending::Welcome { session });
            return;
        }
        self.welcome(session, out);
        if first && registered {
            self.deliver_inbox(session, &key, out);
        }
        if first {
            self.announce(&key, &display, out);
        }
    }

    /// Sends `welcome` to a session whose sign-in is complete.
    pub(crate) fn welcome(&mut self, session: SessionId, out: &mut Vec<Effect>) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.ready = true;
        let (name, key, registered) = (s.name.clone(), s.key.clone(), s.registered);
        let dms = if registered {
            self.dm_infos(&key)
        } else {
            Vec::new()
        };
        out.push(send(
            session,
            &ServerMsg::Welcome {
                v: PROTOCOL_VERSION,
                node: self.cfg.node.clone(),
                name,
                registered,
                session,
                limits: self.cfg.limits.clone(),
                dms,
            },
        ));
    }

    /// Ends a session: it leaves its rooms (members see it go when it was the user's last
    /// session there) and the directory. Idempotent.
    pub fn close(&mut self, session: SessionId, out: &mut Vec<Effect>) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        for room in &s.rooms {
            self.remove_member(room, session, &s.key, &s.name, out);
        }
        if let Some(user) = self.users.get_mut(&s.key) {
            user.sessions.retain(|&id| id != session);
            if user.sessions.is_empty() {
                self.users.remove(&s.key);
            }
        }
        self.announce(&s.key, &s.name, out);
    }

    /// Tells every session that the node is going away, and why (seed 002's EXIT). The server
    /// closes the connections once the notices are flushed.
    pub fn shutdown(&mut self, reason: &str, out: &mut Vec<Effect>) {
        let to: std::sync::Arc<[SessionId]> = self.sessions.keys().copied().collect();
        out.push(Effect::Fanout {
            to,
            frame: encode_server(&ServerMsg::Shutdown {
                reason: reason.to_string(),
            }),
        });
    }

    pub(crate) fn who(
        &mut self,
        session: SessionId,
        room: Option<String>,
        reff: Option<String>,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtoError> {
        let (room, users): (_, Vec<String>) = match room {
            Some(r) => {
                let bare = validate_room(&r)
                    .map_err(|e| ProtoError::new(ErrorCode::InvalidRoom, e.to_string()))?;
                let key = switchboard_proto::room_key(bare);
                let room = self.rooms.get(&key).ok_or_else(|| {
                    ProtoError::new(ErrorCode::NotFound, format!("no room #{bare}"))
                })?;
                let users = room.member_names().into_iter().take(WHO_MAX).collect();
                (Some(room.name.clone()), users)
            }
            None => {
                let users = self.everyone().into_values().take(WHO_MAX).collect();
                (None, users)
            }
        };
        let away = users
            .iter()
            .filter_map(|n| Some((n.clone(), self.away_message(&name_key(n))?)))
            .collect();
        out.push(send(
            session,
            &ServerMsg::Who {
                reff,
                room,
                users,
                away,
            },
        ));
        Ok(())
    }

    pub(crate) fn whois(
        &mut self,
        session: SessionId,
        name: &str,
        reff: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        let key = name_key(name);
        let local = self.users.get(&key).map(|u| u.name.clone());
        let online = local.clone().or_else(|| self.online_elsewhere(&key));
        let account = self.accounts.get(&key).map(|(n, _)| n.clone());
        let Some(display) = online.clone().or(account.clone()) else {
            out.push(error(
                session,
                ErrorCode::NotFound,
                &format!("no user named {name}"),
                reff.as_deref(),
            ));
            return;
        };
        let mut rooms: Vec<String> = self
            .users
            .get(&key)
            .map(|u| {
                u.sessions
                    .iter()
                    .filter_map(|s| self.sessions.get(s))
                    .flat_map(|s| s.rooms.iter())
                    .filter_map(|k| self.rooms.get(k).map(|r| r.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        rooms.extend(self.remote_rooms(&key));
        rooms.sort();
        rooms.dedup();
        out.push(send(
            session,
            &ServerMsg::Whois {
                reff,
                name: display,
                online: online.is_some(),
                registered: account.is_some(),
                rooms,
                away: online.as_ref().and_then(|_| self.away_message(&key)),
            },
        ));
    }

    /// Which stream a `history` request reads, and the oldest timestamp the session may see
    /// in it. Rooms are public. A conversation is readable by its two participants; a guest
    /// only sees the part since it took the name, so that a later guest of the same name
    /// cannot read an earlier one's messages.
    pub fn history_stream(
        &self,
        session: SessionId,
        room: Option<&str>,
        with: Option<&str>,
    ) -> Result<(String, Millis), ProtoError> {
        let s = self
            .sessions
            .get(&session)
            .ok_or_else(|| ProtoError::new(ErrorCode::NotReady, "say hello first"))?;
        match (room, with) {
            (Some(r), None) => {
                let bare = validate_room(r)
                    .map_err(|e| ProtoError::new(ErrorCode::InvalidRoom, e.to_string()))?;
                let key = switchboard_proto::room_key(bare);
                if !self.rooms.contains_key(&key) {
                    return Err(ProtoError::new(
                        ErrorCode::NotFound,
                        format!("no room #{bare}"),
                    ));
                }
                Ok((key, 0))
            }
            (None, Some(w)) => {
                validate_name(w)
                    .map_err(|e| ProtoError::new(ErrorCode::InvalidName, e.to_string()))?;
                let floor = if s.registered { 0 } else { s.since };
                Ok((dm_stream(&s.name, w), floor))
            }
            _ => Err(ProtoError::new(
                ErrorCode::BadRequest,
                "history needs exactly one of `room` and `with`",
            )),
        }
    }
}

/// Refuses a `hello`: an error frame, then the connection closes.
fn refuse(session: SessionId, code: ErrorCode, reason: &str, out: &mut Vec<Effect>) {
    out.push(Effect::Close {
        session,
        code,
        reason: reason.to_string(),
    });
}

/// A presence frame.
pub(crate) fn presence(room: String, name: &str, event: PresenceEvent) -> ServerMsg {
    ServerMsg::Presence {
        room,
        name: name.to_string(),
        event,
    }
}
