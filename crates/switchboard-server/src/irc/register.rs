//! Registration: CAP negotiation, SASL PLAIN, PASS, NICK and USER, then the hello to the core.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::FutureExt;
use switchboard_core::Auth;
use switchboard_proto::limits::MAX_PASSWORD_BYTES;
use switchboard_proto::ErrorCode;

use super::line::Line;
use super::session::{End, Irc, Sasl, CAPS};
use crate::conn::now_ms;
use crate::outbox::Outbox;
use crate::password;

impl Irc {
    pub(super) async fn unregistered(&mut self, l: &Line) -> Option<End> {
        let p0 = l.params.first().cloned();
        match l.command.as_str() {
            "PASS" => match p0 {
                None => self.numeric("461", &["PASS", "Not enough parameters"]),
                Some(p) if p.is_empty() || p.len() > MAX_PASSWORD_BYTES => {
                    self.numeric("464", &["A password is 1 to 256 bytes"]);
                }
                Some(p) => self.pass = Some(p),
            },
            "NICK" => match p0.filter(|n| !n.is_empty()) {
                None => self.numeric("431", &["No nickname given"]),
                Some(n) => {
                    if let Err(e) = switchboard_proto::validate_name(&n) {
                        let why = format!("Erroneous nickname: {e}");
                        self.numeric("432", &[&n, &why]);
                    } else {
                        self.nick = Some(n);
                        return self.try_register().await;
                    }
                }
            },
            "USER" => {
                if l.params.len() < 4 {
                    self.numeric("461", &["USER", "Not enough parameters"]);
                } else if self.outbox.is_some() {
                    self.numeric("462", &["You may not reregister"]);
                } else {
                    self.user = Some(l.params[0].clone());
                    return self.try_register().await;
                }
            }
            // Said before the welcome (while a registration is being written): harmless.
            _ if self.outbox.is_some() => {}
            _ => self.numeric("451", &["You have not registered"]),
        }
        None
    }

    /// `CAP LS|LIST|REQ|END` (IRCv3 capability negotiation, version 302).
    pub(super) async fn cap(&mut self, params: &[String]) -> Option<End> {
        let me = self.me().to_string();
        let sub = params.first().map(|s| s.to_ascii_uppercase());
        match sub.as_deref() {
            Some("LS") => {
                if self.name.is_none() {
                    self.cap_open = true;
                }
                let v302 = params.get(1).and_then(|v| v.parse::<u32>().ok()) >= Some(302);
                let list: Vec<String> = CAPS
                    .iter()
                    .map(|c| match *c {
                        "sasl" if v302 => "sasl=PLAIN".to_string(),
                        c => c.to_string(),
                    })
                    .collect();
                self.server_line("CAP", &[&me, "LS", &list.join(" ")]);
            }
            Some("LIST") => {
                let list = self.caps.enabled().join(" ");
                self.server_line("CAP", &[&me, "LIST", &list]);
            }
            Some("REQ") => {
                if self.name.is_none() {
                    self.cap_open = true;
                }
                let asked = params.get(1).cloned().unwrap_or_default();
                let mut next = self.caps.clone();
                let ok = asked.split_whitespace().all(|c| {
                    let (on, name) = match c.strip_prefix('-') {
                        Some(n) => (false, n),
                        None => (true, c),
                    };
                    next.flag(name).map(|f| *f = on).is_some()
                });
                if ok && !asked.trim().is_empty() {
                    self.caps = next;
                    if let Some(taste) = self.outbox.as_ref().and_then(|o| o.irc()) {
                        taste.set_variant(self.variant());
                    }
                    self.server_line("CAP", &[&me, "ACK", &asked]);
                } else {
                    self.server_line("CAP", &[&me, "NAK", &asked]);
                }
            }
            Some("END") => {
                if self.name.is_none() && self.cap_open {
                    self.cap_open = false;
                    return self.try_register().await;
                }
            }
            _ => {
                let sub = params.first().cloned().unwrap_or_default();
                self.numeric("410", &[&sub, "Invalid CAP command"]);
            }
        }
        None
    }

    /// `AUTHENTICATE` (SASL PLAIN): the account must exist, the password must match it.
    pub(super) async fn authenticate(&mut self, arg: Option<&str>) -> Option<End> {
        if self.name.is_some() || self.outbox.is_some() {
            self.numeric("907", &["You have already authenticated using SASL"]);
            return None;
        }
        if !self.caps.sasl {
            self.numeric(
                "904",
                &["SASL authentication failed: enable the sasl capability first"],
            );
            return None;
        }
        let Some(arg) = arg else {
            self.numeric("461", &["AUTHENTICATE", "Not enough parameters"]);
            return None;
        };
        if arg == "*" {
            self.sasl = Sasl::Idle;
            self.numeric("906", &["SASL authentication aborted"]);
            return None;
        }
        match &mut self.sasl {
            Sasl::Idle => {
                if arg.eq_ignore_ascii_case("PLAIN") {
                    self.sasl = Sasl::Plain(String::new());
                    self.server_bare("AUTHENTICATE", "+");
                } else {
                    self.numeric("908", &["PLAIN", "are available SASL mechanisms"]);
                    self.numeric("904", &["SASL authentication failed"]);
                }
                None
            }
            Sasl::Plain(buf) => {
                if arg != "+" {
                    buf.push_str(arg);
                }
                if buf.len() > 1200 {
                    self.sasl = Sasl::Idle;
                    self.numeric("905", &["SASL message too long"]);
                    return None;
                }
                // A 400-byte chunk means more follows.
                if arg.len() == 400 {
                    return None;
                }
                let payload = std::mem::take(buf);
                self.sasl = Sasl::Idle;
                self.sasl_plain(&payload).await
            }
        }
    }

    pub(super) fn server_bare(&mut self, command: &str, param: &str) {
        self.out.push_str(&format!("{command} {param}\r\n"));
    }

    pub(super) async fn sasl_plain(&mut self, payload: &str) -> Option<End> {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let fields: Option<(String, String)> = decoded.and_then(|d| {
            let mut f = d.split('\0');
            let (_authz, authc, pass) = (f.next()?, f.next()?, f.next()?);
            Some((authc.to_string(), pass.to_string()))
        });
        let Some((account, pass)) = fields else {
            return self.sasl_failed("SASL authentication failed: not a PLAIN message");
        };
        let hash = self
            .shared
            .core
            .lock()
            .expect("core lock")
            .account_hash(&account);
        let ok = match hash {
            Some(h) if !pass.is_empty() && pass.len() <= MAX_PASSWORD_BYTES => {
                password::verify(pass, h).await
            }
            _ => false,
        };
        if !ok {
            return self
                .sasl_failed("SASL authentication failed: unknown account or wrong password");
        }
        let account = self
            .shared
            .core
            .lock()
            .expect("core lock")
            .registered_name(&account)
            .unwrap_or(account);
        let me = self.me().to_string();
        let mask = format!("{me}!{me}@{}", super::HOST);
        let logged = format!("You are now logged in as {account}");
        self.numeric("900", &[&mask, &account, &logged]);
        self.numeric("903", &["SASL authentication successful"]);
        self.sasl_account = Some(account);
        None
    }

    pub(super) fn sasl_failed(&mut self, why: &str) -> Option<End> {
        self.numeric("904", &[why]);
        self.sasl_failures += 1;
        if self.sasl_failures >= 3 {
            return Some(self.error("too many failed authentications"));
        }
        None
    }

    /// Once NICK and USER are in and CAP negotiation is over: signs in to the core. A name
    /// held by someone else gets 433 and the client may try another; a wrong password gets
    /// 464 and the connection closes.
    pub(super) async fn try_register(&mut self) -> Option<End> {
        if self.outbox.is_some() || self.cap_open || self.user.is_none() {
            return None;
        }
        let nick = self.nick.clone()?;
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Some(self.error("the node is shutting down"));
        }
        let (name, auth) = match self.sasl_account.clone() {
            Some(account) => (account, Auth::Verified),
            None => {
                let hash = self
                    .shared
                    .core
                    .lock()
                    .expect("core lock")
                    .account_hash(&nick);
                match (hash, self.pass.clone()) {
                    (Some(h), Some(p)) => {
                        if !password::verify(p, h).await {
                            self.numeric("464", &["Password incorrect"]);
                            return Some(self.error("wrong password"));
                        }
                        (nick.clone(), Auth::Verified)
                    }
                    (Some(_), None) => {
                        self.numeric(
                            "433",
                            &[&nick, "Nickname is registered: give its password with PASS or SASL, or choose another"],
                        );
                        self.nick = None;
                        return None;
                    }
                    (None, Some(p)) => match password::hash(p).await {
                        Ok(h) => (nick.clone(), Auth::Register(h)),
                        Err(_) => return Some(self.error("could not hash the password")),
                    },
                    (None, None) => (nick.clone(), Auth::Guest),
                }
            }
        };
        let guest = matches!(auth, Auth::Guest);
        self.shared.prepare_user(&name, guest).await;
        let taste = super::fanout::IrcTaste::new(&name, self.variant());
        let outbox = Arc::new(Outbox::for_irc(self.shared.cfg.outbox_bytes, taste));
        self.shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .insert(self.session, outbox.clone());
        let session = self.session;
        let ok = self.shared.run(|core, out| {
            core.hello(session, &name, auth, now_ms(), out);
            // For away-notify, and for 305/306 when another session of the user changes it.
            core.want_away_events(session);
            core.has_session(session)
        });
        if ok {
            self.outbox = Some(outbox);
            return None;
        }
        self.shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .remove(&session);
        let mut none = Vec::new();
        let why = outbox
            .next_batch(&mut none)
            .now_or_never()
            .flatten()
            .and_then(|c| c.error);
        match why {
            Some((ErrorCode::NameInUse, _)) => {
                self.numeric("433", &[&name, "Nickname is already in use"]);
                self.nick = None;
            }
            Some((ErrorCode::AuthFailed, m)) => {
                self.numeric("433", &[&name, &m]);
                self.nick = None;
            }
            Some((ErrorCode::InvalidName, m)) => {
                self.numeric("432", &[&name, &m]);
                self.nick = None;
            }
            Some((_, m)) => return Some(self.error(&m)),
            None => return Some(self.error("could not sign in")),
        }
        None
    }
}
