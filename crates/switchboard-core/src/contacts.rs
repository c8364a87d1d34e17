//! Contact books (seed 000): one book per registered user, contact name -> phone number.
//! Each (user, contact) entry is a last-writer-wins register ordered by (Lamport clock,
//! origin), so every node ends with the same book whatever order the updates arrive in; a
//! delete is a tombstone in the register, so an older update arriving late cannot bring the
//! contact back. Tombstones are kept (see docs/contacts.md for when they could be dropped).

use switchboard_proto::limits::MAX_CONTACTS;
use switchboard_proto::names::{name_key, validate_contact};
use switchboard_proto::server::ContactInfo;
use switchboard_proto::{encode_server, ErrorCode, Millis, ProtoError, ServerMsg};

use crate::commit::Pending;
use crate::{Core, Effect, Op, OpBody, SessionId, Stamp};

/// One register of a book.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// `None` is a tombstone.
    pub phone: Option<String>,
    pub at: Stamp,
    /// The user's name as the latest change wrote it (case kept), for seed 000's full
    /// copies; `None` when restored from the store, which keeps only the key.
    pub shown: Option<String>,
}

/// A durable contact change, as the seed 000 gateway forwards it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The user's name as written (case kept).
    pub shown: String,
    pub name: String,
    /// `None`: deleted.
    pub phone: Option<String>,
    /// The Lamport clock of the change's stamp.
    pub lamport: u64,
}

/// One register of a book as seed 000's full copies send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookEntry {
    /// The user's name as last written, else as registered, else the key.
    pub user: String,
    pub name: String,
    /// `None`: a tombstone.
    pub phone: Option<String>,
    /// The Lamport clock of the register's stamp.
    pub lamport: u64,
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

    /// Sets (`phone` given) or deletes a contact of `user`'s book. `user` is the name as
    /// written: the book is its key, and the case is kept for seed 000's wire. `reply` is the
    /// session to answer once the change is durable; the user's other sessions hear of it too.
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
        let lamport = meta.lamport;
        let stamp = (meta.lamport, meta.origin.clone());
        let book = self.books.entry(key.clone()).or_default();
        book.insert(
            name.to_string(),
            Entry {
                phone: phone.clone(),
                at: stamp,
                shown: Some(user.to_string()),
            },
        );
        // The key is the book; the name as written travels only when its case differs.
        let shown = (user != key).then(|| user.to_string());
        let body = match &phone {
            Some(p) => OpBody::ContactSet {
                user: key.clone(),
                name: name.to_string(),
                phone: p.clone(),
                ts: now,
                shown,
            },
            None => OpBody::ContactDelete {
                user: key.clone(),
                name: name.to_string(),
                ts: now,
                shown,
            },
        };
        let pending = Pending::Contact {
            user: key,
            shown: user.to_string(),
            name: name.to_string(),
            phone,
            lamport,
            reply,
        };
        self.push_op(Op { meta, body }, pending);
        Ok(())
    }

    /// A contact set (`phone` given) or deleted by a seed 000 peer: an original server, or
    /// another node over that protocol. Its frame's `clock` is merged into ours (seed 000's
    /// rule) and the change is stamped (clock, peer name) for the last-writer-wins
    /// comparison: it takes effect only if that stamp beats the register's, so an old copy
    /// (a full copy answering AskForUpdate carries clocks the peer had before our delete)
    /// loses to a newer tombstone, and only if it changes the book, so a peer's echo of what
    /// we sent it makes no op. It is then recorded as an op of this node, stamped after
    /// `clock`. `link` names the peer's link, which will not hear the change back. Returns
    /// whether the book changed. See docs/contacts.md.
    #[allow(clippy::too_many_arguments)]
    pub fn contact_from_peer(
        &mut self,
        user: &str,
        name: &str,
        phone: Option<String>,
        (clock, peer): (u64, &str),
        now: Millis,
        link: SessionId,
    ) -> Result<bool, ProtoError> {
        validate_contact(name, phone.as_deref())
            .map_err(|e| ProtoError::new(ErrorCode::BadRequest, e))?;
        self.observe_clock(clock);
        let theirs = (clock, peer.to_string());
        let current = self.books.get(&name_key(user)).and_then(|b| b.get(name));
        if let Some(e) = current {
            if e.at >= theirs || e.phone == phone {
                return Ok(false);
            }
        } else if phone.is_none() {
            return Ok(false);
        }
        self.contact_update(user, name, phone, now, Some((link, None)))?;
        Ok(true)
    }

    /// Every register of every book, tombstones included when `deletes`, sorted by user
    /// key and name: seed 000's full copies (AskForUpdate answers, and the state a link
    /// pushes to an original server).
    pub fn book_entries(&self, deletes: bool) -> Vec<BookEntry> {
        let mut keys: Vec<&String> = self.books.keys().collect();
        keys.sort();
        let mut all = Vec::new();
        for key in keys {
            let registered = self.accounts.get(key).map(|(n, _)| n);
            for (name, e) in &self.books[key] {
                if e.phone.is_none() && !deletes {
                    continue;
                }
                let user = e.shown.as_ref().or(registered).unwrap_or(key);
                all.push(BookEntry {
                    user: user.clone(),
                    name: name.clone(),
                    phone: e.phone.clone(),
                    lamport: e.at.0,
                });
            }
        }
        all
    }

    /// Folds a contact op from another node into the book; true when it changed the book.
    pub(crate) fn merge_contact(
        &mut self,
        user: &str,
        shown: &str,
        name: &str,
        phone: Option<String>,
        at: Stamp,
    ) -> bool {
        let book = self.books.entry(user.to_string()).or_default();
        if book.get(name).is_some_and(|e| e.at >= at) {
            return false;
        }
        let shown = Some(shown.to_string());
        book.insert(name.to_string(), Entry { phone, at, shown });
        true
    }

    /// A contact change is durable: answer the requester, tell the user's other sessions.
    pub(crate) fn contact_changed(
        &mut self,
        user: &str,
        change: Change,
        reply: Option<(SessionId, Option<String>)>,
        out: &mut Vec<Effect>,
    ) {
        let Change {
            shown,
            name,
            phone,
            lamport,
        } = change;
        let requester = reply.as_ref().map(|r| r.0);
        out.push(Effect::ContactChanged {
            user: shown,
            name: name.clone(),
            phone: phone.clone(),
            lamport,
            by: requester,
        });
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
        // The name as the session shows it: the book is its key, the case goes to seed 000.
        let user = s.name.clone();
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
            self.books.entry(user).or_default().insert(
                name,
                Entry {
                    phone,
                    at,
                    shown: None,
                },
            );
        }
    }
}
