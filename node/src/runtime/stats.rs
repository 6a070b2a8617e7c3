//! What the event loop counts for `status`, and mirrors to the Prometheus metrics.

use crate::leadership::RoleName;
use crate::metrics::Metrics;
use crate::status::{MessageCounts, RoleChange};
use crate::wire::unix_ms;
use bully_model::{timer_name, Epoch, Role, State, Timer};
use std::collections::BTreeMap;
use std::time::Instant;

/// The counters of one run.
#[derive(Debug)]
pub(super) struct Stats {
    sent: BTreeMap<&'static str, u64>,
    received: BTreeMap<&'static str, u64>,
    pub timeouts: BTreeMap<String, u64>,
    pub elections_started: u64,
    pub elections_seen: u64,
    pub role_changes: u64,
    pub status_requests: u64,
    pub last_role_change: Option<RoleChange>,
    pub epoch_since_unix_ms: Option<u64>,
    highest_epoch: Option<Epoch>,
    pub started: Instant,
    pub started_unix_ms: u64,
}

fn in_election(role: &Role) -> bool {
    matches!(role, Role::Electing { .. } | Role::Halting { .. })
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            sent: BTreeMap::new(),
            received: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            elections_started: 0,
            elections_seen: 0,
            role_changes: 0,
            status_requests: 0,
            last_role_change: None,
            epoch_since_unix_ms: None,
            highest_epoch: None,
            started: Instant::now(),
            started_unix_ms: unix_ms(),
        }
    }

    pub fn sent(&mut self, kind: &'static str, m: &Metrics) {
        *self.sent.entry(kind).or_default() += 1;
        m.sent(kind);
    }

    pub fn received(&mut self, kind: &'static str, m: &Metrics) {
        *self.received.entry(kind).or_default() += 1;
        m.received(kind);
    }

    pub fn timeout(&mut self, timer: &Timer) {
        *self.timeouts.entry(timer_name(timer)).or_default() += 1;
    }

    /// The election counters of one step from `was` to `after`: an election started (the
    /// node entered one), or a higher epoch seen in office.
    pub fn stepped(&mut self, was: Option<&Role>, after: &State, m: &Metrics) {
        if !was.is_some_and(in_election) && in_election(&after.role) {
            self.elections_started += 1;
            m.election_started();
        }
        if let Some(e) = after.epoch() {
            if !matches!(self.highest_epoch, Some(h) if h >= e) {
                self.highest_epoch = Some(e);
                self.elections_seen += 1;
                self.epoch_since_unix_ms = Some(unix_ms());
            }
        }
    }

    /// Counts a role change (see [`crate::leadership::Change`]) caused by `why`.
    pub fn role_changed(&mut self, was: Option<&Role>, now: &Role, why: String) {
        self.role_changes += 1;
        self.last_role_change = Some(RoleChange {
            unix_ms: unix_ms(),
            uptime_ms: self.uptime_ms(),
            from: was.map(|r| RoleName::of(r).to_string()),
            to: RoleName::of(now).to_string(),
            why,
        });
    }

    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The messages sent and received, by kind and in total.
    pub fn messages(&self) -> MessageCounts {
        MessageCounts {
            sent: names(&self.sent),
            received: names(&self.received),
            sent_total: self.sent.values().sum(),
            received_total: self.received.values().sum(),
        }
    }
}

/// A count by reason or kind, with owned names (the status reply's form).
pub(super) fn names(m: &BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
