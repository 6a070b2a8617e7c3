//! Prometheus metrics (`--metrics ADDR` serves them at `/metrics`).
//!
//! The metrics are kept by `prometheus-client` and served in its text format by a small
//! `tiny_http` server on its own thread, so a scrape never waits for the event loop and the
//! event loop never waits for a scrape: every metric is an atomic the loop updates as it goes.

use crate::leadership::Leadership;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{info, warn};

/// One label, `name="value"`; every value is a fixed string, so counting allocates nothing.
type Label = [(&'static str, &'static str); 1];
/// The hook runs' two labels.
type HookLabels = [(&'static str, &'static str); 2];

/// Every metric of a node. Cheap to clone (each metric is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    is_coordinator: Gauge,
    coordinator_id: Gauge,
    epoch_round: Gauge,
    elections_started: Counter,
    role_changes: Counter,
    sent: Family<Label, Counter>,
    received: Family<Label, Counter>,
    dropped: Family<Label, Counter>,
    heartbeat_rtt: Histogram,
    hook_runs: Family<HookLabels, Counter>,
    /// The transport's drop totals already counted (it keeps totals; Prometheus counters only
    /// grow by increments).
    dropped_seen: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            registry: Arc::default(),
            is_coordinator: Gauge::default(),
            coordinator_id: Gauge::default(),
            epoch_round: Gauge::default(),
            elections_started: Counter::default(),
            role_changes: Counter::default(),
            sent: Family::default(),
            received: Family::default(),
            dropped: Family::default(),
            // 0.5 ms to about 16 s.
            heartbeat_rtt: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            hook_runs: Family::default(),
            dropped_seen: Arc::default(),
        };
        m.coordinator_id.set(-1);
        m.epoch_round.set(-1);
        r.register(
            "bully_is_coordinator",
            "1 while this node is in office as coordinator, else 0",
            m.is_coordinator.clone(),
        );
        r.register(
            "bully_coordinator_id",
            "The coordinator this node is or follows (-1 while none)",
            m.coordinator_id.clone(),
        );
        r.register(
            "bully_epoch_round",
            "Round of the epoch (fencing token round.leader) this node is in office for or follows (-1 while none)",
            m.epoch_round.clone(),
        );
        r.register(
            "bully_elections_started",
            "Elections this node started or joined as a candidate",
            m.elections_started.clone(),
        );
        r.register(
            "bully_role_changes",
            "Changes of this node's role, of whom it follows, or of the epoch",
            m.role_changes.clone(),
        );
        r.register(
            "bully_messages_sent",
            "Protocol messages sent, by type",
            m.sent.clone(),
        );
        r.register(
            "bully_messages_received",
            "Protocol messages received, by type",
            m.received.clone(),
        );
        r.register(
            "bully_frames_dropped",
            "Frames dropped, by reason (malformed, oversized, bad_mac, peer_down, ...)",
            m.dropped.clone(),
        );
        r.register_with_unit(
            "bully_heartbeat_rtt",
            "Time from a follower's heartbeat to the coordinator's reply",
            Unit::Seconds,
            m.heartbeat_rtt.clone(),
        );
        r.register(
            "bully_hook_runs",
            "Leadership hook runs, by hook and outcome (ok, failed, timeout)",
            m.hook_runs.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    pub fn leadership(&self, l: &Leadership) {
        self.is_coordinator.set(i64::from(l.is_coordinator()));
        self.coordinator_id
            .set(l.coordinator.map_or(-1, |c| i64::try_from(c).unwrap_or(-1)));
        self.epoch_round
            .set(l.epoch.map_or(-1, |e| i64::from(e.round)));
    }
    pub fn role_changed(&self) {
        self.role_changes.inc();
    }
    pub fn election_started(&self) {
        self.elections_started.inc();
    }
    pub fn sent(&self, kind: &'static str) {
        self.sent.get_or_create(&[("type", kind)]).inc();
    }
    pub fn received(&self, kind: &'static str) {
        self.received.get_or_create(&[("type", kind)]).inc();
    }
    pub fn heartbeat_rtt(&self, rtt: Duration) {
        self.heartbeat_rtt.observe(rtt.as_secs_f64());
    }
    pub fn hook_run(&self, hook: &'static str, outcome: &'static str) {
        self.hook_runs
            .get_or_create(&[("hook", hook), ("outcome", outcome)])
            .inc();
    }
    /// Brings `bully_frames_dropped` up to the transport's totals by reason.
    pub fn dropped_totals(&self, totals: &BTreeMap<&'static str, u64>) {
        let mut seen = self.dropped_seen.lock().unwrap_or_else(|e| e.into_inner());
        for (&reason, &total) in totals {
            let before = seen.entry(reason).or_default();
            if total > *before {
                self.dropped
                    .get_or_create(&[("reason", reason)])
                    .inc_by(total - *before);
                *before = total;
            }
        }
    }

    /// The text a scrape gets (OpenMetrics text format).
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// Serves `/metrics` on `addr` until the returned server is dropped.
    pub fn serve(&self, addr: SocketAddr) -> Result<MetricsServer, String> {
        let server = tiny_http::Server::http(addr)
            .map(Arc::new)
            .map_err(|e| format!("--metrics {addr}: {e}"))?;
        let bound = server
            .server_addr()
            .to_ip()
            .map_or_else(|| addr.to_string(), |a| a.to_string());
        info!("metrics at http://{bound}/metrics");
        let metrics = self.clone();
        let srv = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in srv.incoming_requests() {
                    let response = if request.url() == "/metrics" {
                        let header = tiny_http::Header::from_bytes(
                            "Content-Type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .expect("a valid header");
                        tiny_http::Response::from_string(metrics.render()).with_header(header)
                    } else {
                        tiny_http::Response::from_string("not found: try /metrics\n")
                            .with_status_code(404)
                    };
                    if let Err(e) = request.respond(response) {
                        warn!("metrics: could not answer a scrape: {e}");
                    }
                }
            })
            .map_err(|e| format!("metrics thread: {e}"))?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
        })
    }
}

/// The running `/metrics` endpoint; dropping it stops it.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
