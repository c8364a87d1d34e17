//! Cluster membership as a sans-IO state machine: who the peers are, which links are up,
//! when a silent peer is declared down, and when to dial whom (exponential backoff with
//! jitter). The server turns its [`Action`]s into sockets; tests drive it with a clock.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_proto::peer::Member;
use switchboard_proto::Millis;

/// Timing of the membership protocol.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// This node.
    pub node: String,
    /// The URL peers dial to reach this node.
    pub url: String,
    /// A peer silent for this long is declared down.
    pub down_after: Millis,
    /// First re-dial delay; doubles per failed attempt up to `backoff_max`.
    pub backoff_min: Millis,
    pub backoff_max: Millis,
    /// Seed of the jitter, so that runs replay exactly.
    pub seed: u64,
}

/// The state of the link to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Never linked yet, or dialling.
    Connecting,
    Up,
    Down,
}

/// What the membership knows of one peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub node: String,
    pub url: String,
    pub state: LinkState,
    /// When the state last changed.
    pub since: Millis,
    pub last_heartbeat: Option<Millis>,
    /// The peer's Lamport clock as of its last heartbeat.
    pub clock: u64,
    /// Failed dials since the link was last up.
    pub attempts: u32,
    #[serde(skip)]
    next_dial: Millis,
    #[serde(skip)]
    link: Option<LinkId>,
    #[serde(skip)]
    dialing: bool,
}

/// Identifies one link (socket) to a peer, chosen by the server.
pub type LinkId = u64;

/// What the server should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dial this URL (a seed or a known member).
    Dial { url: String },
    /// Close this link: a duplicate, or a peer declared down.
    Close { link: LinkId, reason: String },
}

/// See the module documentation.
pub struct Membership {
    cfg: MembershipConfig,
    peers: BTreeMap<String, PeerStatus>,
    /// Seed URLs not yet known by name, with their next dial time and attempts.
    seeds: BTreeMap<String, (Millis, u32, bool)>,
    rng: u64,
}

impl Membership {
    pub fn new(cfg: MembershipConfig, seeds: &[String], now: Millis) -> Membership {
        let rng = cfg.seed | 1;
        let mut m = Membership {
            cfg,
            peers: BTreeMap::new(),
            seeds: BTreeMap::new(),
            rng,
        };
        for url in seeds {
            if *url != m.cfg.url {
                m.seeds.insert(url.clone(), (now, 0, false));
            }
        }
        m
    }

    pub fn node(&self) -> &str {
        &self.cfg.node
    }

    /// Every member this node knows, itself included, for gossip.
    pub fn members(&self) -> Vec<Member> {
        let mut v = vec![Member {
            node: self.cfg.node.clone(),
            url: self.cfg.url.clone(),
        }];
        v.extend(self.peers.values().map(|p| Member {
            node: p.node.clone(),
            url: p.url.clone(),
        }));
        v
    }

    /// The status of every peer, for `cluster status`.
    pub fn status(&self) -> Vec<PeerStatus> {
        self.peers.values().cloned().collect()
    }

    /// Peers whose link is up.
    pub fn up(&self) -> Vec<String> {
        self.peers
            .values()
            .filter(|p| p.state == LinkState::Up)
            .map(|p| p.node.clone())
            .collect()
    }

    /// Learns members from gossip; new ones get dialled.
    pub fn learn(&mut self, members: &[Member], now: Millis) {
        for m in members {
            if m.node == self.cfg.node || switchboard_proto::validate_name(&m.node).is_err() {
                continue;
            }
            self.seeds.remove(&m.url);
            let p = self
                .peers
                .entry(m.node.clone())
                .or_insert_with(|| PeerStatus {
                    node: m.node.clone(),
                    url: m.url.clone(),
                    state: LinkState::Connecting,
                    since: now,
                    last_heartbeat: None,
                    clock: 0,
                    attempts: 0,
                    next_dial: now,
                    link: None,
                    dialing: false,
                });
            if p.state != LinkState::Up {
                p.url = m.url.clone();
            }
        }
    }

    /// A dial of `url` failed: try again later, backing off.
    pub fn dial_failed(&mut self, url: &str, now: Millis) {
        let delay_for = |attempts: u32, m: &mut Membership| m.backoff(attempts);
        if let Some(node) = self
            .peers
            .values()
            .find(|p| p.url == url)
            .map(|p| p.node.clone())
        {
            let attempts = self.peers[&node].attempts + 1;
            let delay = delay_for(attempts, self);
            let p = self.peers.get_mut(&node).expect("found above");
            p.attempts = attempts;
            p.dialing = false;
            p.next_dial = now + delay;
            return;
        }
        if let Some((_, attempts, _)) = self.seeds.get(url).copied() {
            let delay = delay_for(attempts + 1, self);
            self.seeds
                .insert(url.to_string(), (now + delay, attempts + 1, false));
        }
    }

    /// A link authenticated. Returns the link to close if this one duplicates another: of two
    /// links between the same nodes, the one dialled by the node with the smaller name stays,
    /// so both ends make the same choice.
    pub fn link_up(
        &mut self,
        node: &str,
        url: &str,
        link: LinkId,
        dialed_by: &str,
        now: Millis,
    ) -> Option<Action> {
        self.seeds.remove(url);
        self.learn(
            &[Member {
                node: node.to_string(),
                url: url.to_string(),
            }],
            now,
        );
        let keeper = if self.cfg.node.as_str() < node {
            self.cfg.node.clone()
        } else {
            node.to_string()
        };
        let p = self.peers.get_mut(node).expect("learnt above");
        p.dialing = false;
        if let (LinkState::Up, Some(existing)) = (p.state, p.link) {
            // Keep the preferred direction; among equals, the newer link.
            if dialed_by != keeper {
                return Some(Action::Close {
                    link,
                    reason: "duplicate link".into(),
                });
            }
            p.link = Some(link);
            p.last_heartbeat = Some(now);
            return Some(Action::Close {
                link: existing,
                reason: "duplicate link".into(),
            });
        }
        p.state = LinkState::Up;
        p.since = now;
        p.link = Some(link);
        p.attempts = 0;
        p.last_heartbeat = Some(now);
        None
    }

    /// A heartbeat arrived on `link`.
    pub fn heartbeat(
        &mut self,
        node: &str,
        link: LinkId,
        clock: u64,
        members: &[Member],
        now: Millis,
    ) {
        if let Some(p) = self.peers.get_mut(node) {
            if p.link == Some(link) {
                p.last_heartbeat = Some(now);
                p.clock = p.clock.max(clock);
            }
        }
        self.learn(members, now);
    }

    /// A link closed. If it was the peer's current link, the peer is down and is re-dialled
    /// after a backoff.
    pub fn link_down(&mut self, node: &str, link: LinkId, now: Millis) {
        let Some(p) = self.peers.get(node) else {
            return;
        };
        if p.link != Some(link) {
            return;
        }
        let attempts = p.attempts;
        let delay = self.backoff(attempts + 1);
        let p = self.peers.get_mut(node).expect("checked");
        p.link = None;
        p.state = LinkState::Down;
        p.since = now;
        p.dialing = false;
        p.next_dial = now + delay;
    }

    /// Advances time: declares silent peers down and says whom to dial.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        let down_after = self.cfg.down_after;
        let mut silent = Vec::new();
        for p in self.peers.values() {
            if p.state == LinkState::Up
                && p.last_heartbeat
                    .is_some_and(|h| now.saturating_sub(h) > down_after)
            {
                silent.push((p.node.clone(), p.link));
            }
        }
        for (node, link) in silent {
            if let Some(link) = link {
                actions.push(Action::Close {
                    link,
                    reason: format!("no heartbeat from {node} for {down_after} ms"),
                });
                self.link_down(&node, link, now);
            }
        }
        for p in self.peers.values_mut() {
            if p.state != LinkState::Up && !p.dialing && p.next_dial <= now {
                p.dialing = true;
                actions.push(Action::Dial { url: p.url.clone() });
            }
        }
        for (url, (next, _, dialing)) in self.seeds.iter_mut() {
            if !*dialing && *next <= now {
                *dialing = true;
                actions.push(Action::Dial { url: url.clone() });
            }
        }
        actions
    }

    /// The delay before dial attempt number `attempts`: exponential, capped, with up to 50%
    /// random jitter so that restarted nodes do not dial in lockstep.
    fn backoff(&mut self, attempts: u32) -> Millis {
        let base = self
            .cfg
            .backoff_min
            .saturating_mul(1u64 << attempts.min(16).saturating_sub(1))
            .min(self.cfg.backoff_max);
        // xorshift64: deterministic for a given seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        base - base / 2 + self.rng % (base / 2 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(node: &str, seeds: &[&str]) -> Membership {
        let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
        Membership::new(
            MembershipConfig {
                node: node.into(),
                url: format!("ws://{node}"),
                down_after: 3_000,
                backoff_min: 100,
                backoff_max: 5_000,
                seed: 42,
            },
            &seeds,
            0,
        )
    }

    fn member(node: &str) -> Member {
        Member {
            node: node.into(),
            url: format!("ws://{node}"),
        }
    }

    #[test]
    fn seeds_are_dialled_then_members_learnt_by_gossip() {
        let mut a = m("a", &["ws://b"]);
        assert_eq!(
            a.tick(0),
            vec![Action::Dial {
                url: "ws://b".into()
            }]
        );
        assert!(
            a.tick(10).is_empty(),
            "no second dial while one is in flight"
        );
        assert_eq!(a.link_up("b", "ws://b", 1, "a", 20), None);
        a.heartbeat("b", 1, 5, &[member("b"), member("c")], 30);
        assert_eq!(
            a.tick(40),
            vec![Action::Dial {
                url: "ws://c".into()
            }]
        );
        assert_eq!(a.up(), vec!["b"]);
        assert_eq!(a.status()[0].clock, 5);
    }

    #[test]
    fn silent_peers_are_declared_down_and_redialled_with_backoff() {
        let mut a = m("a", &[]);
        a.link_up("b", "ws://b", 1, "b", 0);
        a.heartbeat("b", 1, 1, &[], 1_000);
        assert!(a.tick(3_500).is_empty());
        let acts = a.tick(4_100);
        assert!(
            matches!(&acts[0], Action::Close { link: 1, .. }),
            "{acts:?}"
        );
        assert_eq!(a.status()[0].state, LinkState::Down);
        // Re-dialled after 50-100 ms, then backing off further on each failure.
        let mut t = 4_100;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let start = t;
            loop {
                t += 10;
                if !a.tick(t).is_empty() {
                    break;
                }
            }
            waits.push(t - start);
            a.dial_failed("ws://b", t);
        }
        assert!(waits[0] <= 110, "{waits:?}");
        assert!(waits[5] >= 1_000, "backs off: {waits:?}");
        assert!(waits.iter().all(|w| *w <= 5_010), "capped: {waits:?}");
    }

    /// The documented bounds of attempt `k`'s delay: the exponential base (100 ms doubling,
    /// capped at 5 s) minus up to half of it.
    fn bounds(k: u32) -> (Millis, Millis) {
        let base = (100u64 << (k - 1).min(20)).min(5_000);
        (base - base / 2, base)
    }

    #[test]
    fn redial_delays_grow_exponentially_to_the_cap_with_jitter_per_seed() {
        let with_seed = |seed| {
            let cfg = MembershipConfig {
                seed,
                ..m("a", &[]).cfg
            };
            Membership::new(cfg, &[], 0)
        };
        let (mut one, mut two) = (with_seed(1), with_seed(0x5eed_0002));
        let mut delays = (Vec::new(), Vec::new());
        for k in 1..=12 {
            let (d1, d2) = (one.backoff(k), two.backoff(k));
            let (lo, hi) = bounds(k);
            assert!(
                (lo..=hi).contains(&d1),
                "attempt {k}: {d1} not in {lo}..={hi}"
            );
            assert!(
                (lo..=hi).contains(&d2),
                "attempt {k}: {d2} not in {lo}..={hi}"
            );
            delays.0.push(d1);
            delays.1.push(d2);
        }
        assert_ne!(delays.0, delays.1, "two seeds must not dial in lockstep");
        // Exponential: each doubling lifts the floor to the previous ceiling, so up to the
        // cap (attempt 7: 6,400 ms > 5,000) no delay is shorter than the one before it,
        // and the 6th is at least 8 times the 1st.
        for d in [&delays.0, &delays.1] {
            assert!(d[..7].windows(2).all(|w| w[0] <= w[1]), "{d:?}");
            assert!(d[5] >= 8 * d[0], "{d:?}");
            assert!(
                d[6..].iter().all(|x| (2_500..=5_000).contains(x)),
                "capped: {d:?}"
            );
        }
        // At the cap the jitter still spreads the dials (not one fixed value), and huge
        // attempt counts neither overflow nor pass the cap.
        let capped: std::collections::BTreeSet<Millis> = (0..20).map(|_| one.backoff(40)).collect();
        assert!(capped.len() > 10, "{capped:?}");
        assert!(
            capped.iter().all(|x| (2_500..=5_000).contains(x)),
            "{capped:?}"
        );
        assert!((2_500..=5_000).contains(&one.backoff(u32::MAX)));
    }

    #[test]
    fn both_ends_keep_the_same_one_of_two_duplicate_links() {
        let mut a = m("a", &[]);
        let mut b = m("b", &[]);
        // Link 1 dialled by a, link 2 dialled by b, each seen by both ends.
        assert_eq!(a.link_up("b", "ws://b", 1, "a", 0), None);
        assert_eq!(b.link_up("a", "ws://a", 2, "b", 0), None);
        let a_closes = a.link_up("b", "ws://b", 2, "b", 1);
        let b_closes = b.link_up("a", "ws://a", 1, "a", 1);
        assert!(matches!(a_closes, Some(Action::Close { link: 2, .. })));
        assert!(matches!(b_closes, Some(Action::Close { link: 2, .. })));
        // Closing the dropped duplicate does not take the peer down.
        b.link_down("a", 2, 2);
        assert_eq!(b.up(), vec!["a"]);
    }
}
