//! Rooms: join (creating), leave, topic, the room list, and messages to a room.

use switchboard_proto::limits::{MAX_TEXT_BYTES, MAX_TOPIC_BYTES};
use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{
    encode_server, room_key, validate_room, ErrorCode, Millis, ProtoError, RoomInfo, ServerMsg,
};

use crate::commit::Pending;
use crate::core::{send, Room};
use crate::directory::presence;
use crate::{Core, Effect, OpBody, SessionId};

fn bad_room(e: switchboard_proto::NameError) -> ProtoError {
    ProtoError::new(ErrorCode::InvalidRoom, e.to_string())
}

impl Core {
    pub(crate) fn join(
        &mut self,
        session: SessionId,
        room: &str,
        reff: Option<String>,
        now: Millis,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtoError> {
        let bare = validate_room(room).map_err(bad_room)?;
        let key = room_key(bare);
        if !self.rooms.contains_key(&key) {
            self.rooms.insert(key.clone(), Room::new(bare.to_string()));
            let body = OpBody::Room {
                room: bare.to_string(),
                ts: now,
            };
            self.persist(body, Pending::Nothing);
        }
        let s = self.sessions.get_mut(&session).expect("checked by handle");
        let (user_key, user_name) = (s.key.clone(), s.name.clone());
        let newly = !s.rooms.contains(&key);
        if newly {
            s.rooms.push(key.clone());
        }
        let room = self.rooms.get_mut(&key).expect("inserted above");
        let mut arrived = false;
        if newly {
            let elsewhere = room.remote.contains_key(&user_key);
            let entry = room
                .users
                .entry(user_key.clone())
                .or_insert((user_name.clone(), 0));
            entry.1 += 1;
            if entry.1 == 1 && !room.members.is_empty() && !elsewhere {
                // The user's first session in the room: the members already there see them
                // arrive; the joiner learns the member list from `joined`.
                let to = room.member_slice();
                let frame = encode_server(&presence(
                    room.name.clone(),
                    &user_name,
                    PresenceEvent::Join,
                ));
                out.push(Effect::Fanout { to, frame });
                arrived = true;
            }
            room.members.insert(session, ());
            room.cache = None;
        }
        out.push(send(
            session,
            &ServerMsg::Joined {
                room: room.name.clone(),
                cursor: room.cursor.clone(),
                topic: room.topic.clone(),
                members: room.member_names(),
                reff,
            },
        ));
        if arrived {
            self.away_on_join(&key, &user_key, &user_name, out);
        }
        if newly {
            self.announce(&user_key, &user_name, out);
        }
        Ok(())
    }

    pub(crate) fn leave(
        &mut self,
        session: SessionId,
        room: &str,
        reff: Option<String>,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtoError> {
        let bare = validate_room(room).map_err(bad_room)?;
        let key = room_key(bare);
        let s = self.sessions.get_mut(&session).expect("checked by handle");
        let Some(pos) = s.rooms.iter().position(|r| *r == key) else {
            return Err(ProtoError::new(
                ErrorCode::NotMember,
                format!("you are not in #{bare}"),
            ));
        };
        s.rooms.swap_remove(pos);
        let (user_key, user_name) = (s.key.clone(), s.name.clone());
        let display = self
            .rooms
            .get(&key)
            .map_or(bare.to_string(), |r| r.name.clone());
        self.remove_member(&key, session, &user_key, &user_name, out);
        self.announce(&user_key, &user_name, out);
        out.push(send(
            session,
            &ServerMsg::Left {
                room: display,
                reff,
            },
        ));
        Ok(())
    }

    /// Takes a session out of a room's member lists; when it was the user's last session
    /// there, the remaining members see the user leave.
    pub(crate) fn remove_member(
        &mut self,
        key: &str,
        session: SessionId,
        user_key: &str,
        user_name: &str,
        out: &mut Vec<Effect>,
    ) {
        let Some(room) = self.rooms.get_mut(key) else {
            return;
        };
        if room.members.remove(&session).is_none() {
            return;
        }
        room.cache = None;
        let gone = match room.users.get_mut(user_key) {
            Some(entry) => {
                entry.1 -= 1;
                entry.1 == 0
            }
            None => false,
        };
        if gone {
            room.users.remove(user_key);
            if !room.members.is_empty() && !room.remote.contains_key(user_key) {
                let to = room.member_slice();
                let frame = encode_server(&presence(
                    room.name.clone(),
                    user_name,
                    PresenceEvent::Leave,
                ));
                out.push(Effect::Fanout { to, frame });
            }
        }
    }

    pub(crate) fn rooms_list(
        &mut self,
        session: SessionId,
        reff: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .values()
            .map(|r| RoomInfo {
                room: r.name.clone(),
                members: r.member_names().len() as u32,
                topic: r.topic.clone(),
            })
            .collect();
        rooms.sort_by_key(|r| r.room.to_ascii_lowercase());
        out.push(send(session, &ServerMsg::Rooms { reff, rooms }));
    }

    pub(crate) fn topic(
        &mut self,
        session: SessionId,
        room: &str,
        topic: Option<String>,
        reff: Option<String>,
        now: Millis,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtoError> {
        let bare = validate_room(room).map_err(bad_room)?;
        let key = room_key(bare);
        let Some(r) = self.rooms.get_mut(&key) else {
            return Err(ProtoError::new(
                ErrorCode::NotFound,
                format!("no room #{bare}"),
            ));
        };
        let Some(topic) = topic else {
            let msg = ServerMsg::Topic {
                reff,
                room: r.name.clone(),
                topic: r.topic.clone(),
                by: None,
            };
            out.push(send(session, &msg));
            return Ok(());
        };
        if topic.len() > MAX_TOPIC_BYTES {
            return Err(ProtoError::new(
                ErrorCode::TooLarge,
                format!("a topic is at most {MAX_TOPIC_BYTES} bytes"),
            ));
        }
        if !r.members.contains_key(&session) {
            return Err(ProtoError::new(
                ErrorCode::NotMember,
                format!("join #{bare} to set its topic"),
            ));
        }
        let by = self.sessions[&session].name.clone();
        let topic = (!topic.is_empty()).then_some(topic);
        r.topic = topic.clone();
        r.topic_by = Some((by.clone(), now));
        let change = |reff: Option<String>| {
            encode_server(&ServerMsg::Topic {
                reff,
                room: r.name.clone(),
                topic: topic.clone(),
                by: Some(by.clone()),
            })
        };
        let (frame, reply) = (change(None), change(reff));
        let body = OpBody::Topic {
            room: r.name.clone(),
            topic,
            by,
            ts: now,
        };
        let pending = Pending::Topic {
            room: key.clone(),
            frame,
            setter: Some((session, reply)),
        };
        let meta = self.next_meta();
        if let Some(r) = self.rooms.get_mut(&key) {
            r.topic_at = (meta.lamport, meta.origin.clone());
        }
        self.push_op(crate::Op { meta, body }, pending);
        Ok(())
    }

    /// Accepts a message to a room and emits it for persistence.
    /// Members receive it, and the sender its acknowledgement, once it is on disk.
    pub(crate) fn send_room(
        &mut self,
        session: SessionId,
        room: &str,
        text: String,
        reff: Option<String>,
        now: Millis,
    ) -> Result<(), ProtoError> {
        if self.overloaded() {
            return Err(crate::core::busy());
        }
        let bare = validate_room(room).map_err(bad_room)?;
        let key = room_key(bare);
        let Some(r) = self.rooms.get_mut(&key) else {
            return Err(ProtoError::new(
                ErrorCode::NotFound,
                format!("no room #{bare}"),
            ));
        };
        if !r.members.contains_key(&session) {
            return Err(ProtoError::new(
                ErrorCode::NotMember,
                format!("join #{bare} to send to it"),
            ));
        }
        let room_name = r.name.clone();
        let from = self.sessions[&session].name.clone();
        let (meta, msg, frame, ack) = self.new_message(
            key.clone(),
            from,
            (Some(room_name), None),
            text,
            now,
            reff,
            false,
        );
        let pending = Pending::RoomMessage {
            room: key,
            lamport: meta.lamport,
            origin: meta.origin.clone(),
            oseq: meta.oseq,
            frame,
            ack: Some((session, ack)),
        };
        let body = OpBody::Message {
            msg,
            queued_for: None,
        };
        self.push_op(crate::Op { meta, body }, pending);
        Ok(())
    }

    /// `send`: to a room or to a user, never both.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &mut self,
        session: SessionId,
        room: Option<String>,
        to: Option<String>,
        text: String,
        reff: Option<String>,
        now: Millis,
    ) -> Result<(), ProtoError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(ProtoError::new(
                ErrorCode::TooLarge,
                format!("a message text is at most {MAX_TEXT_BYTES} bytes"),
            ));
        }
        if text.trim().is_empty() {
            return Err(ProtoError::new(
                ErrorCode::BadRequest,
                "a message needs some text",
            ));
        }
        match (room, to) {
            (Some(room), None) => self.send_room(session, &room, text, reff, now),
            (None, Some(to)) => self.send_direct(session, &to, text, reff, now),
            _ => Err(ProtoError::new(
                ErrorCode::BadRequest,
                "send needs exactly one of `room` and `to`",
            )),
        }
    }
}
