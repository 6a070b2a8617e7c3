//! Everyone told about leadership changes: the metrics, the hooks and the library's
//! subscribers, fed by the event loop after every step. (Kept apart from [`crate::leadership`],
//! the view they all read, so that neither hooks nor metrics depend on each other.)

use crate::hooks::HookRunner;
use crate::leadership::{Change, Leadership};
use crate::metrics::Metrics;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// Everyone told about leadership changes: the metrics, the hooks and the library's
/// subscribers. The event loop calls [`Watchers::update`] after every step.
#[derive(Default)]
pub struct Watchers {
    pub metrics: Metrics,
    pub hooks: Option<HookRunner>,
    subscribers: Vec<Sender<Change>>,
    /// The latest leadership, for readers on other threads.
    current: Arc<Mutex<Leadership>>,
    last: Option<Leadership>,
}

impl Watchers {
    pub fn new(metrics: Metrics, hooks: Option<HookRunner>) -> Self {
        Watchers {
            metrics,
            hooks,
            ..Watchers::default()
        }
    }
    /// Every later change is also sent to `tx` (a closed receiver is forgotten).
    pub fn subscribe(&mut self, tx: Sender<Change>) {
        self.subscribers.push(tx);
    }
    /// The latest leadership, shared.
    pub fn current(&self) -> Arc<Mutex<Leadership>> {
        Arc::clone(&self.current)
    }
    /// Reports `now` if it differs from the last report; whether it did.
    pub fn update(&mut self, id: u64, now: Leadership) -> bool {
        if self.last == Some(now) {
            return false;
        }
        let change = Change {
            id,
            previous: self.last.unwrap_or(Leadership::NONE),
            current: now,
        };
        self.last = Some(now);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = now;
        self.metrics.leadership(&now);
        if change.previous != Leadership::NONE {
            self.metrics.role_changed();
        }
        if let Some(h) = &self.hooks {
            h.notify(&change);
        }
        self.subscribers.retain(|tx| tx.send(change).is_ok());
        true
    }
}
