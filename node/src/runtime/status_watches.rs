//! Status requests parked until the node's role changes ([`wire::Watch`]).

use crate::transport::ReplyTo;
use crate::wire;
use std::time::Instant;

/// Most status requests waiting for a role change at once; beyond it the oldest is answered
/// at once (a client that forgets its requests cannot make the node hoard them).
const MAX_STATUS_WATCHES: usize = 256;

/// Where a status reply goes: the route and the request's nonce.
pub(super) type Asker = (ReplyTo, Option<u64>);

/// A status request waiting for a role change.
struct StatusWatch {
    asker: Asker,
    /// The `role_changes` count the asker knows.
    role_changes: u64,
    /// When it is answered anyway.
    until: Instant,
}

/// The parked status requests, oldest first.
#[derive(Default)]
pub(super) struct StatusWatches {
    parked: Vec<StatusWatch>,
}

impl StatusWatches {
    /// Parks a request until the role changes or its wait is over; when full, the oldest is
    /// returned to be answered now.
    pub fn park(&mut self, asker: Asker, watch: wire::Watch) -> Option<Asker> {
        let evicted =
            (self.parked.len() >= MAX_STATUS_WATCHES).then(|| self.parked.remove(0).asker);
        self.parked.push(StatusWatch {
            asker,
            role_changes: watch.role_changes,
            until: Instant::now() + watch.wait,
        });
        evicted
    }

    /// Takes out the requests whose role change came (the count is no longer theirs) or whose
    /// wait is over at `now`; all of them with `all`.
    pub fn take_due(&mut self, now: Instant, role_changes: u64, all: bool) -> Vec<Asker> {
        let due = |w: &StatusWatch| all || w.role_changes != role_changes || w.until <= now;
        if !self.parked.iter().any(due) {
            return Vec::new();
        }
        let (answer, keep) = std::mem::take(&mut self.parked).into_iter().partition(due);
        self.parked = keep;
        answer.into_iter().map(|w| w.asker).collect()
    }

    /// When the next parked request is answered anyway.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.parked.iter().map(|w| w.until).min()
    }
}
