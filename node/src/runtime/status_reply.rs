//! The `status` reply: what the event loop, its counters and its wire say about the node.

use super::stats::names;
use super::Runtime;
use crate::leadership::{describe_role, RoleName};
use crate::status::{Status, TimingStatus, TransportStats};
use crate::transport::Wire;
use crate::wire::unix_ms;
use bully_model::State;
use std::time::{Duration, Instant};

/// Static facts shown by `status`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub listen: String,
    pub advertise: String,
}

/// The status reply of `rt` now.
pub(super) fn status<T: Wire>(rt: &Runtime<T>) -> Status {
    let state = rt.state.as_ref();
    let role = state.map(|s| &s.role);
    let (stats, tc) = (&rt.stats, rt.transport.counters());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let timing = &rt.actor.timing;
    Status {
        id: rt.id,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        listen: rt.info.listen.clone(),
        advertise: rt.info.advertise.clone(),
        role: role.map(|r| RoleName::of(r).to_string()),
        role_detail: role.cloned(),
        role_text: role.map(describe_role),
        coordinator: state.and_then(State::coordinator),
        is_coordinator: state.is_some_and(State::is_coordinator),
        epoch: state.and_then(State::epoch),
        epoch_text: state.and_then(State::epoch).map(|e| e.to_string()),
        promised: state.map(|s| s.promised),
        members: state.map(|s| s.members.clone()),
        endpoints: rt.transport.address_book(),
        timers: rt.timers.left_ms(Instant::now()),
        elections_started: stats.elections_started,
        elections_seen: stats.elections_seen,
        role_changes: stats.role_changes,
        last_role_change: stats.last_role_change.clone(),
        epoch_since_unix_ms: stats.epoch_since_unix_ms,
        messages: stats.messages(),
        timeouts: stats.timeouts.clone(),
        dropped: names(&tc.dropped),
        dropped_total: tc.dropped.values().sum(),
        auth: rt.transport.auth_status(),
        transport: TransportStats {
            deferred: tc.deferred,
            frames_in: tc.frames_in,
            frames_out: tc.frames_out,
            bytes_in: tc.bytes_in,
            bytes_out: tc.bytes_out,
        },
        status_requests: stats.status_requests,
        slow_round_trips: rt.round_trips.slow,
        longest_round_trip_ms: ms(rt.round_trips.longest),
        steps: rt.seq,
        timing: TimingStatus {
            heartbeat_ms: ms(timing.heartbeat),
            timeout_ms: ms(timing.timeout),
            // Without the one-way delays (four of them are added to it).
            failover_bound_ms: ms(timing.failover_bound(Duration::ZERO)),
        },
        storage: rt.store.as_ref().map(|s| s.path().display().to_string()),
        saved: rt.last_saved.clone(),
        started_unix_ms: stats.started_unix_ms,
        now_unix_ms: unix_ms(),
        uptime_ms: stats.uptime_ms(),
    }
}
