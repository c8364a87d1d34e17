//! Contact books (seed 000): one book per registered user, contact name -> phone number.
//! Each (user, contact) entry is a last-writer-wins register ordered by (Lamport clock,
//! origin), so every node ends with the same book whatever order the updates arrive in; a
//! delete is a tombstone in the register, so an older update arriving late cannot bring the
//! contact back. Tombstones are kept (see docs/contacts.md for when they could be dropped).

use switchboard_proto::limits::MAX_CONTACTS;
use switchboard_proto::names::{name_key, validate_contact};
use switchboard_proto::server::ContactInfo;
use switchboard_proto::{encode_server, ErrorCode, Millis, ProtoError, ServerMsg};

use crate::core::Pending;
use crate::{Core, Effect, Op, OpBody, SessionId, Stamp};

/// One register of a book.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// `None` is a tombstone.
    pub phone: Option<String>,
    pub at: Stamp,
}

impl Core {
    /// A user's contacts, sorted by name, with whether a user of that name is online.
    pub fn contacts_of(&self, user: &str) -> Vec<ContactInfo> {
        let Some(book) = self.books.get(&name_key(user)) else {
            return Vec::new();
        };
        book.iter()
            .filter_map(|(name, e)| {
                let phone = e.phone.clone()?;
                let key = name_key(name);
                let online = self.users.contains_key(&key) || self.online_elsewhere(&key).is_some();
                Some(ContactInfo {
                    name: name.clone(),
                    phone,
                    online,
                })
            })
            .collect()
    }

    /// Sets (`phone` given) or deletes a contact of `user`'s book. `reply` is the session to
    /// answer once the change is durable; the user's other sessions hear of it too.
    pub fn contact_update(
        &mut self,
        user: &str,
        name: &str,
        phone: Option<String>,
        now: Millis,
        reply: Option<(SessionId, Option<String>)>,
    ) -> Result<(), ProtoError> {
        validate_contact(name, phone.as_deref())
            .map_err(|e| ProtoError::new(ErrorCode::BadRequest, e))?;
        let key = name_key(user);
        let book = self.books.entry(key.clone()).or_default();
        let live = |e: &Entry| e.phone.is_some();
        if phone.is_none() && !book.get(name).is_some_and(live) {
            return Err(ProtoError::new(
                ErrorCode::NotFound,
                format!("no contact named {name}"),
            ));
        }
        if phone.is_some()
            && !book.get(name).is_some_and(live)
            && book.values().filter(|e| live(e)).count() >= MAX_CONTACTS
        {
            return Err(ProtoError::new(
                ErrorCode::TooLarge,
                format!("a contact book holds at most {MAX_CONTACTS} contacts"),
            ));
        }
        let meta = self.next_meta();
        let stamp = (meta.lamport, meta.origin.clone());
        let book = self.books.entry(key.clone()).or_default();
        book.insert(
            name.to_string(),
            Entry {
                phone: phone.clone(),
                at: stamp,
            },
        );
        let body = match &phone {
            Some(p) => OpBody::ContactSet {
                user: key.clone(),
                name: name.to_string(),
                phone: p.clone(),
                ts: now,
            },
            None => OpBody::ContactDelete {
                user: key.clone(),
                name: name.to_string(),
                ts: now,
            },
        };
        let pending = Pending::Contact {
            user: key,
            name: name.to_string(),
            phone,
            reply,
        };
        self.push_op(Op { meta, body }, pending);
        Ok(())
    }

    /// Every live contact of every book: (user, name, phone), for seed 000's AskForUpdate.
    pub fn all_contacts(&self) -> Vec<(String, String, String)> {
        let mut all = Vec::new();
        for (user, book) in &self.books {
            for (name, e) in book {
                if let Some(p) = &e.phone {
                    all.push((user.clone(), name.clone(), p.clone()));
                }
            }
        }
        all.sort();
        all
    }

    /// Folds a contact op from another node into the book; true when it changed the book.
    pub(crate) fn merge_contact(
        &mut self,
        user: &str,
        name: &str,
        phone: Option<String>,
        at: Stamp,
    ) -> bool {
        let book = self.books.entry(user.to_string()).or_default();
        if book.get(name).is_some_and(|e| e.at >= at) {
            return false;
        }
        book.insert(name.to_string(), Entry { phone, at });
        true
    }

    /// A contact change is durable: answer the requester, tell the user's other sessions.
    pub(crate) fn contact_changed(
        &mut self,
        user: &str,
        name: String,
        phone: Option<String>,
        reply: Option<(SessionId, Option<String>)>,
        out: &mut Vec<Effect>,
    ) {
        out.push(Effect::ContactChanged {
            user: user.to_string(),
            name: name.clone(),
            phone: phone.clone(),
        });
        let requester = reply.as_ref().map(|r| r.0);
        if let Some((session, reff)) = reply {
            if self.sessions.contains_key(&session) {
                let frame = encode_server(&ServerMsg::Contact {
                    reff,
                    name: name.clone(),
                    phone: phone.clone(),
                });
                out.push(Effect::Send { to: session, frame });
            }
        }
        let others: Vec<SessionId> = self
            .users
            .get(user)
            .map(|u| {
                u.sessions
                    .iter()
                    .copied()
                    .filter(|s| {
                        Some(*s) != requester && self.sessions.get(s).is_some_and(|s| s.registered)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !others.is_empty() {
            let frame = encode_server(&ServerMsg::Contact {
                reff: None,
                name,
                phone,
            });
            out.push(Effect::Fanout {
                to: others.into(),
                frame,
            });
        }
    }

    /// The native protocol's contact requests, for a signed-in session.
    pub(crate) fn contacts_request(
        &mut self,
        session: SessionId,
        msg: switchboard_proto::ClientMsg,
        now: Millis,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtoError> {
        use switchboard_proto::ClientMsg;
        let s = &self.sessions[&session];
        if !s.registered {
            return Err(ProtoError::new(
                ErrorCode::RegistrationRequired,
                "contact books belong to registered names: sign in with a password",
            ));
        }
        let user = s.key.clone();
        match msg {
            ClientMsg::Contacts { reff } => {
                let frame = encode_server(&ServerMsg::Contacts {
                    reff,
                    contacts: self.contacts_of(&user),
                });
                out.push(Effect::Send { to: session, frame });
                Ok(())
            }
            ClientMsg::ContactSet { name, phone, reff } => {
                self.contact_update(&user, &name, Some(phone), now, Some((session, reff)))
            }
            ClientMsg::ContactDelete { name, reff } => {
                self.contact_update(&user, &name, None, now, Some((session, reff)))
            }
            _ => Ok(()),
        }
    }

    /// Restores the books from the store.
    pub(crate) fn restore_contacts(
        &mut self,
        contacts: Vec<(String, String, Option<String>, Stamp)>,
    ) {
        for (user, name, phone, at) in contacts {
            self.books
                .entry(user)
                .or_default()
                .insert(name, Entry { phone, at });
        }
    }
}
