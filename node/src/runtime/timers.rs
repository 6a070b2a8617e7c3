//! The deadline table: which timers are set, and when each fires.

use bully_model::{timer_name, Timer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The timers set, with their deadlines.
#[derive(Debug, Default)]
pub(super) struct Timers {
    deadlines: BTreeMap<Timer, Instant>,
}

impl Timers {
    /// Sets `timer` for a handler that asked for `delay` (see [`timer_delay`]).
    pub fn set(&mut self, timer: Timer, delay: Duration) {
        self.deadlines
            .insert(timer, Instant::now() + timer_delay(timer, delay));
    }
    /// Cancels `timer`; whether it was set.
    pub fn cancel(&mut self, timer: Timer) -> bool {
        self.deadlines.remove(&timer).is_some()
    }
    /// The earliest timer due at `now`, taken off the table.
    pub fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = self
            .deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .min_by_key(|(_, at)| **at)?;
        let timer = *timer;
        self.deadlines.remove(&timer);
        Some(timer)
    }
    /// When the next timer fires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.values().min().copied()
    }
    /// Milliseconds until each timer fires, by timer name (`status`).
    pub fn left_ms(&self, now: Instant) -> BTreeMap<String, u64> {
        self.deadlines
            .iter()
            .map(|(t, at)| {
                let left = at.saturating_duration_since(now).as_millis() as u64;
                (timer_name(t), left)
            })
            .collect()
    }
}

/// How long after being set `timer` fires, for a handler that asked for `delay`.
///
/// Heartbeats leave on the wall clock's multiples of the heartbeat period rather than a
/// period after the last reply: at most `delay` after the timer is set, never later, so the
/// failure detector's bound ([`bully_model::Durations::failover_bound`]) holds unchanged, and
/// the model lets a heartbeat timer fire at any time (it only paces). What it buys: followers
/// on one clock heartbeat together, so a coordinator answers its members in one burst per
/// period instead of one wake-up per member (a 64-node coordinator's idle CPU, BENCHMARKS.md).
/// Every other timer is a failure detector or a retry and fires exactly `delay` later.
fn timer_delay(timer: Timer, delay: Duration) -> Duration {
    match timer {
        Timer::Heartbeat => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(delay, |now| until_next_multiple(now, delay)),
        _ => delay,
    }
}

/// The time from `now` to the next multiple of `period` after it: in `(0, period]` (a zero
/// period: zero).
fn until_next_multiple(now: Duration, period: Duration) -> Duration {
    let period_ns = period.as_nanos();
    if period_ns == 0 {
        return Duration::ZERO;
    }
    let left = period_ns - now.as_nanos() % period_ns;
    Duration::from_nanos(left.min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_wait_for_the_next_multiple_of_the_period() {
        let ms = Duration::from_millis;
        let period = ms(100);
        // Never later than a period, never at once: on a multiple, the next one.
        assert_eq!(until_next_multiple(ms(1_000), period), period);
        assert_eq!(until_next_multiple(ms(1_001), period), ms(99));
        assert_eq!(until_next_multiple(ms(1_099), period), ms(1));
        for now in (0..1_000_000_007u64).step_by(9_999_991) {
            let left = until_next_multiple(Duration::from_nanos(now), period);
            assert!(
                left > Duration::ZERO && left <= period,
                "{now} ns: {left:?}"
            );
            assert_eq!((now + left.as_nanos() as u64) % 100_000_000, 0);
        }
        assert_eq!(until_next_multiple(ms(5), Duration::ZERO), Duration::ZERO);
        // Only the heartbeat is placed on the grid; detectors and retries wait exactly.
        assert_eq!(timer_delay(Timer::HeartbeatTimeout, ms(300)), ms(300));
        assert!(timer_delay(Timer::Heartbeat, period) <= period);
    }

    #[test]
    fn the_earliest_due_timer_fires_first_and_only_once() {
        let mut timers = Timers::default();
        timers.set(Timer::ElectionTimeout, Duration::ZERO);
        timers.set(Timer::HaltTimeout, Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(timers.take_due(now), Some(Timer::ElectionTimeout));
        assert_eq!(timers.take_due(now), None, "the halt timeout is not due");
        assert!(timers.next_deadline().is_some_and(|at| at > now));
        assert!(timers.cancel(Timer::HaltTimeout));
        assert!(!timers.cancel(Timer::HaltTimeout));
        assert_eq!(timers.next_deadline(), None);
    }
}
