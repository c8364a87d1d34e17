//! Who is in the cluster as seen through NATS: a node is up from the first message heard
//! from it until it has been silent past the down timeout (or restarted: its heartbeats
//! carry its incarnation). There are no links to dial or close; this table only decides
//! when to tell the core `peer_linked` and `peer_unlinked`.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_proto::Millis;

/// One member as `/v1/cluster` shows it: the mesh's fields, so that `cluster status` and the
/// browser's failover read both backplanes alike.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemberView {
    pub node: String,
    /// The URL clients and the browser use to reach that node (its `--advertise`).
    pub url: String,
    pub state: &'static str,
    pub since: Millis,
    pub last_heartbeat: Option<Millis>,
    pub clock: u64,
    /// Always 0: nodes are not dialled on NATS.
    pub attempts: u32,
}

struct Member {
    view: MemberView,
    incarnation: u64,
    /// When this node last sent it a presence snapshot because its heartbeats left us out.
    resynced_at: Millis,
}

/// What the driver must tell the core after an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Nothing,
    /// First heard, or heard again after being declared down.
    Linked,
    /// Restarted (a new incarnation) while it was up: unlink, then link again.
    Restarted,
}

#[derive(Default)]
pub(crate) struct Members {
    nodes: BTreeMap<String, Member>,
}

impl Members {
    /// Any message from `node`: it is alive.
    pub fn heard(&mut self, node: &str, now: Millis) -> Change {
        match self.nodes.get_mut(node) {
            Some(m) if m.view.state == "up" => {
                m.view.last_heartbeat = Some(now);
                Change::Nothing
            }
            Some(m) => {
                m.view.state = "up";
                m.view.since = now;
                m.view.last_heartbeat = Some(now);
                Change::Linked
            }
            None => {
                self.nodes.insert(
                    node.to_string(),
                    Member {
                        view: MemberView {
                            node: node.to_string(),
                            url: String::new(),
                            state: "up",
                            since: now,
                            last_heartbeat: Some(now),
                            clock: 0,
                            attempts: 0,
                        },
                        incarnation: 0,
                        resynced_at: 0,
                    },
                );
                Change::Linked
            }
        }
    }

    /// A heartbeat's details. A different incarnation than the one known means the node
    /// restarted, possibly within the down timeout: it has forgotten what we told it.
    pub fn heartbeat(&mut self, node: &str, url: &str, incarnation: u64, clock: u64) -> Change {
        let Some(m) = self.nodes.get_mut(node) else {
            return Change::Nothing;
        };
        m.view.url = url.to_string();
        m.view.clock = clock;
        let restarted = m.incarnation != 0 && m.incarnation != incarnation;
        m.incarnation = incarnation;
        if restarted {
            Change::Restarted
        } else {
            Change::Nothing
        }
    }

    /// Whether to resend `node` what a new link sends (its heartbeat shows it does not count
    /// this node as up), at most once per `every` ms.
    pub fn should_resync(&mut self, node: &str, now: Millis, every: Millis) -> bool {
        match self.nodes.get_mut(node) {
            Some(m) if now.saturating_sub(m.resynced_at) >= every => {
                m.resynced_at = now;
                true
            }
            _ => false,
        }
    }

    /// Declares down the nodes silent for `down_after` ms; returns them.
    pub fn expire(&mut self, now: Millis, down_after: Millis) -> Vec<String> {
        let mut gone = Vec::new();
        for (node, m) in self.nodes.iter_mut() {
            if m.view.state == "up"
                && now.saturating_sub(m.view.last_heartbeat.unwrap_or(0)) > down_after
            {
                m.view.state = "down";
                m.view.since = now;
                gone.push(node.clone());
            }
        }
        gone
    }

    /// The nodes up now.
    pub fn up(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, m)| m.view.state == "up")
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn views(&self) -> Vec<MemberView> {
        self.nodes.values().map(|m| m.view.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_up_while_heard_and_down_after_silence() {
        let mut m = Members::default();
        assert_eq!(m.heard("b", 1_000), Change::Linked);
        assert_eq!(m.heard("b", 1_500), Change::Nothing);
        assert!(m.expire(2_000, 600).is_empty());
        assert_eq!(m.expire(2_200, 600), ["b"]);
        assert!(m.up().is_empty());
        assert_eq!(m.heard("b", 3_000), Change::Linked);
    }

    #[test]
    fn a_new_incarnation_is_a_restart() {
        let mut m = Members::default();
        m.heard("b", 1);
        assert_eq!(m.heartbeat("b", "ws://b", 10, 0), Change::Nothing);
        assert_eq!(m.heartbeat("b", "ws://b", 10, 5), Change::Nothing);
        assert_eq!(m.heartbeat("b", "ws://b", 11, 0), Change::Restarted);
    }
}
