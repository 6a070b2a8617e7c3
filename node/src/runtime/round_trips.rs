//! Heartbeat round trips: how long a follower's heartbeat takes to come back, the one measure
//! of how close the network runs to the failure detector's timeout.

use crate::metrics::Metrics;
use crate::transport::worth_logging;
use bully_model::Msg;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tracing::warn;

/// The heartbeats out and the round trips measured.
#[derive(Debug, Default)]
pub(super) struct RoundTrips {
    /// When this node last sent a heartbeat to each peer.
    heartbeat_sent: BTreeMap<Id, Instant>,
    /// Round trips longer than half the timeout.
    pub slow: u64,
    pub longest: Duration,
}

impl RoundTrips {
    /// Notes a message leaving for `to` (a heartbeat starts a round trip).
    pub fn sent(&mut self, to: Id, msg: &Msg) {
        if matches!(msg, Msg::Heartbeat { .. }) {
            self.heartbeat_sent.insert(to, Instant::now());
        }
    }

    /// Notes a message from `from` (a heartbeat's reply ends its round trip): node `node`'s
    /// round trip is recorded against the protocol's `timeout`.
    pub fn received(&mut self, node: u64, from: Id, msg: &Msg, timeout: Duration, m: &Metrics) {
        if !matches!(msg, Msg::HeartbeatAck { .. }) {
            return;
        }
        if let Some(at) = self.heartbeat_sent.remove(&from) {
            self.record(node, from, at.elapsed(), timeout, m);
        }
    }

    /// Records a heartbeat round trip. One longer than half the timeout is counted and logged
    /// (sparsely): Bully's failure detector is accurate only while every round trip stays
    /// under the timeout (the checked model's `--timing sync`; without it the checker shows two
    /// coordinators), and this node is getting close to that edge.
    fn record(&mut self, node: u64, peer: Id, rtt: Duration, timeout: Duration, m: &Metrics) {
        m.heartbeat_rtt(rtt);
        self.longest = self.longest.max(rtt);
        if rtt * 2 <= timeout {
            return;
        }
        self.slow += 1;
        if worth_logging(self.slow) {
            warn!(
                node,
                peer = usize::from(peer),
                count = self.slow,
                "a heartbeat round trip took {} ms, over half the {} ms timeout: the failure \
                 detector is accurate only while round trips stay under the timeout; raise \
                 --timeout",
                rtt.as_millis(),
                timeout.as_millis()
            );
        }
    }
}
