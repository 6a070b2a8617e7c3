//! A node as a library: build a [`NodeConfig`], [`start`] it, follow leadership on the
//! [`NodeHandle`], stop it. `bully-node run` is this plus the command line, logging and signals.
//!
//! ```no_run
//! use bully_node::node::{self, NodeConfig};
//!
//! let config = NodeConfig::new(3, "tcp://127.0.0.1:7003")
//!     .peer(1, "tcp://127.0.0.1:7001")
//!     .peer(2, "tcp://127.0.0.1:7002");
//! let node = node::start(config).expect("a valid configuration");
//! for change in node.changes() {
//!     if change.current.is_coordinator() {
//!         println!("leading with fencing token {:?}", change.current.epoch);
//!     }
//! }
//! ```

use crate::auth::{Authenticator, ClusterKey};
use crate::hooks::{HookRunner, Hooks};
use crate::leadership::{Change, Leadership};
use crate::metrics::{Metrics, MetricsServer};
use crate::runtime::{NodeInfo, RunError, Runtime};
use crate::status::{self, ClientError};
use crate::steplog::StepLog;
use crate::storage::{self, Saved, Store, StoreError};
use crate::transport::controlled::ControlledTransport;
use crate::transport::zmq::{TransportError, ZmqOptions, ZmqTransport};
use crate::transport::Wire;
use crate::watchers::Watchers;
use crate::wire::{self, DEFAULT_MAX_FRAME};
use bully_model::{Bully, Durations, Members, Start, Variant};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{info, warn};

/// How a node starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StartSpec {
    /// Knowing every member (these IDs, itself included).
    Full(Vec<u64>),
    /// Through one running member.
    Join(u64),
    /// Through an endpoint whose ID must be asked first.
    JoinEndpoint(String),
}

/// Everything a node needs, checked. No command-line types: the CLI builds one from its flags
/// and the config file, an application with [`NodeConfig::new`] and the setters.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    /// Endpoint to bind.
    pub listen: String,
    /// Endpoint peers reach this node at.
    pub advertise: String,
    /// The other members and where to reach them.
    pub book: BTreeMap<u64, String>,
    pub start: StartSpec,
    /// Reach a member whose endpoint nobody told at `tcp://127.0.0.1:<ID>`.
    pub localhost_ports: bool,
    pub timing: Durations,
    /// Where the epoch promise is kept across restarts (none: in memory only).
    pub data_dir: Option<PathBuf>,
    /// The cluster's shared secret (none: unauthenticated).
    pub cluster_key: Option<PathBuf>,
    pub max_frame: usize,
    /// Append the NDJSON step log here.
    pub step_log: Option<PathBuf>,
    pub hooks: Hooks,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics: Option<SocketAddr>,
    /// Testing only: a deliberately broken protocol variant.
    pub variant: Variant,
    /// Replay only: hand every frame and timer to the replayer at this endpoint (see
    /// [`crate::transport::controlled`]) instead of talking to peers.
    pub controlled: Option<String>,
}

impl NodeConfig {
    /// Node `id` listening on `listen`, alone until peers are added; defaults elsewhere.
    pub fn new(id: u64, listen: impl Into<String>) -> NodeConfig {
        let listen = listen.into();
        NodeConfig {
            id,
            advertise: default_advertise(&listen),
            listen,
            book: BTreeMap::new(),
            start: StartSpec::Full(vec![id]),
            localhost_ports: false,
            timing: Durations::default(),
            data_dir: None,
            cluster_key: None,
            max_frame: DEFAULT_MAX_FRAME,
            step_log: None,
            hooks: Hooks::default(),
            metrics: None,
            variant: Variant::Correct,
            controlled: None,
        }
    }
    /// Another member (with full membership, every peer is a member).
    pub fn peer(mut self, id: u64, endpoint: impl Into<String>) -> NodeConfig {
        self.book.insert(id, endpoint.into());
        if let StartSpec::Full(ids) = &mut self.start {
            if !ids.contains(&id) {
                ids.push(id);
                ids.sort_unstable();
            }
        }
        self
    }
    /// Join through member `contact` (give its endpoint with [`NodeConfig::peer`]).
    pub fn join(mut self, contact: u64) -> NodeConfig {
        self.start = StartSpec::Join(contact);
        self
    }
    pub fn timing(mut self, heartbeat: Duration, timeout: Duration) -> NodeConfig {
        self.timing = Durations { heartbeat, timeout };
        self
    }
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> NodeConfig {
        self.data_dir = Some(dir.into());
        self
    }
    pub fn cluster_key(mut self, file: impl Into<PathBuf>) -> NodeConfig {
        self.cluster_key = Some(file.into());
        self
    }
    pub fn hooks(mut self, hooks: Hooks) -> NodeConfig {
        self.hooks = hooks;
        self
    }
    pub fn metrics(mut self, addr: SocketAddr) -> NodeConfig {
        self.metrics = Some(addr);
        self
    }
}

/// The endpoint peers use when only a bind endpoint is known: `*` and `0.0.0.0` become
/// `127.0.0.1`.
pub fn default_advertise(listen: &str) -> String {
    if let Some(rest) = listen.strip_prefix("tcp://") {
        if let Some((host, port)) = rest.rsplit_once(':') {
            if host == "*" || host == "0.0.0.0" {
                return format!("tcp://127.0.0.1:{port}");
            }
        }
    }
    listen.to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration cannot work (the CLI exits with 2).
    #[error("{0}")]
    Config(String),
    /// Something failed while running (the CLI exits with 1).
    #[error("{0}")]
    Runtime(String),
}

/// What survives between the setup and the event loop: the store and what it held.
pub(crate) struct Durable {
    pub store: Option<Store>,
    pub saved: Option<Saved>,
    /// This run's incarnation ([`storage::next_incarnation`]).
    pub incarnation: u64,
}

/// Opens the data directory and reads the saved state.
pub(crate) fn open_store(cfg: &NodeConfig) -> Result<Durable, NodeError> {
    let store = match &cfg.data_dir {
        Some(dir) => Some(Store::open(dir, cfg.id).map_err(|e| NodeError::Config(e.to_string()))?),
        None => {
            warn!(
                node = cfg.id,
                "no data directory: the epoch promise is kept in memory only and lost on restart"
            );
            None
        }
    };
    let saved = match &store {
        Some(s) => s.load().map_err(|e| match e {
            StoreError::Corrupt { .. } | StoreError::Read { .. } => {
                NodeError::Config(e.to_string())
            }
            other => NodeError::Runtime(other.to_string()),
        })?,
        None => None,
    };
    if let Some(dir) = cfg.data_dir.as_deref() {
        if saved.is_none() && storage::incarnation_path(dir, cfg.id).exists() {
            // Also after a crash before the first save; but then nothing was sent either.
            warn!(
                node = cfg.id,
                dir = %dir.display(),
                "this node ran before with this data directory, but its storage file is gone: \
                 starting without its epoch promise (docs/src/assumptions.md: \"A lost data directory\")"
            );
        }
    }
    let incarnation = storage::next_incarnation(cfg.data_dir.as_deref(), cfg.id).map_err(|e| {
        NodeError::Config(format!("--data-dir: cannot record the incarnation: {e}"))
    })?;
    Ok(Durable {
        store,
        saved,
        incarnation,
    })
}

/// The metrics, the hook thread and the `/metrics` endpoint of a node.
pub(crate) fn watchers(cfg: &NodeConfig) -> Result<(Watchers, Option<MetricsServer>), NodeError> {
    let metrics = Metrics::new();
    let server = match cfg.metrics {
        Some(addr) => Some(metrics.serve(addr).map_err(NodeError::Config)?),
        None => None,
    };
    let hooks =
        (!cfg.hooks.is_empty()).then(|| HookRunner::start(cfg.hooks.clone(), metrics.clone()));
    Ok((Watchers::new(metrics, hooks), server))
}

/// Asks the node at `endpoint` for its ID (for a join through an endpoint), until it answers
/// or `stop` is set (`None`).
fn discover_id(
    endpoint: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Option<u64>, NodeError> {
    let ctx = zmq::Context::new();
    let mut client = status::StatusClient::connect(&ctx, endpoint)
        .map_err(|e| NodeError::Config(format!("--join: {e}")))?;
    info!("asking {endpoint} for its ID");
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match client.query(timeout) {
            Ok(s) => return Ok(Some(s.id)),
            Err(ClientError::Timeout { .. }) => {
                warn!("{endpoint} did not answer within {timeout:?}; asking again")
            }
            Err(e) => return Err(NodeError::Runtime(e.to_string())),
        }
    }
}

/// What the event loop is handed besides the configuration: where its steps are logged, the
/// stop flag with the pipe that wakes the loop, and who hears of leadership changes.
pub struct Controls {
    pub steplog: Option<StepLog>,
    pub stop: Arc<AtomicBool>,
    /// Read end of a pipe whose write end wakes the loop (signals, [`NodeHandle::stop`]).
    pub wake: UnixStream,
    pub watchers: Watchers,
}

/// A wire bound for one node: its transport, the endpoints `status` shows, and how the node
/// starts on it (a join through an endpoint already resolved to the contact's ID).
pub(crate) struct Bound<T> {
    pub transport: T,
    pub info: NodeInfo,
    pub start: StartSpec,
}

/// The one assembly of a node, whatever its wire: opens the storage, has `bind` bind the wire
/// (`None`: the node was stopped first), builds the handler and runs the event loop until the
/// stop flag is set. `wire` names the wire in the log.
pub(crate) fn assemble<T: Wire>(
    cfg: &NodeConfig,
    wire: &'static str,
    controls: Controls,
    bind: impl FnOnce(&Durable, UnixStream, &AtomicBool) -> Result<Option<Bound<T>>, NodeError>,
) -> Result<(), NodeError> {
    let Controls {
        steplog,
        stop,
        wake,
        watchers,
    } = controls;
    let durable = open_store(cfg)?;
    let Some(bound) = bind(&durable, wake, &stop)? else {
        return Ok(());
    };
    let mut actor = Bully::new(protocol_start(&bound.start)?, cfg.timing);
    actor.variant = cfg.variant;
    let Durable {
        store,
        saved,
        incarnation,
    } = durable;
    info!(
        node = cfg.id,
        wire,
        listen = %bound.info.listen,
        heartbeat = ?cfg.timing.heartbeat,
        timeout = ?cfg.timing.timeout,
        restored = saved.is_some(),
        "starting"
    );
    Runtime::new(
        cfg.id,
        actor,
        bound.transport,
        store,
        bound.info,
        steplog,
        stop,
    )
    .with_watchers(watchers)
    .with_incarnation(incarnation)
    .run(saved.map(|s| s.storage))?;
    info!(node = cfg.id, "stopped");
    Ok(())
}

/// The handler's start for `spec`: by now a join names its contact's ID.
fn protocol_start(spec: &StartSpec) -> Result<Start, NodeError> {
    match spec {
        StartSpec::Full(ids) => Ok(Start::Full {
            members: Members::new(ids.iter().map(|&i| wire::id(i))),
        }),
        StartSpec::Join(c) => Ok(Start::Join {
            contact: wire::id(*c),
        }),
        StartSpec::JoinEndpoint(ep) => Err(NodeError::Config(format!(
            "--join {ep}: this wire joins through a member's ID, not an endpoint"
        ))),
    }
}

impl From<RunError> for NodeError {
    fn from(e: RunError) -> NodeError {
        NodeError::Runtime(e.to_string())
    }
}

impl From<TransportError> for NodeError {
    /// A socket that cannot be made is the machine's failure; an endpoint that cannot be
    /// bound or reached is the configuration's.
    fn from(e: TransportError) -> NodeError {
        match e {
            TransportError::Zmq(_) => NodeError::Runtime(e.to_string()),
            _ => NodeError::Config(e.to_string()),
        }
    }
}

/// Runs a node on the native wire (or, with [`NodeConfig::controlled`], the replayer's) until
/// the stop flag is set.
pub fn run(cfg: &NodeConfig, controls: Controls) -> Result<(), NodeError> {
    run_keyed(cfg, load_key(cfg)?, controls)
}

/// The cluster key of `cfg`, read and checked.
fn load_key(cfg: &NodeConfig) -> Result<Option<ClusterKey>, NodeError> {
    match &cfg.cluster_key {
        Some(path) => ClusterKey::load(path)
            .map(Some)
            .map_err(|e| NodeError::Config(e.to_string())),
        None => Ok(None),
    }
}

/// [`run`] with the key already read.
fn run_keyed(
    cfg: &NodeConfig,
    key: Option<ClusterKey>,
    controls: Controls,
) -> Result<(), NodeError> {
    match &cfg.controlled {
        Some(replayer) => assemble(cfg, "controlled", controls, |_, wake, _| {
            bind_controlled(cfg, replayer, wake)
        }),
        None => assemble(cfg, "native", controls, |durable, wake, stop| {
            bind_native(cfg, key, durable, wake, stop)
        }),
    }
}

/// The native wire: the address book (saved endpoints first; the configuration wins where both
/// name an ID), the cluster key, and a join through an endpoint resolved to the contact's ID.
fn bind_native(
    cfg: &NodeConfig,
    key: Option<ClusterKey>,
    durable: &Durable,
    wake: UnixStream,
    stop: &AtomicBool,
) -> Result<Option<Bound<ZmqTransport>>, NodeError> {
    let saved_book = durable.saved.as_ref().map(|s| &s.peers);
    let mut book = saved_book.cloned().unwrap_or_default();
    book.extend(cfg.book.clone());
    let opts = ZmqOptions {
        listen: cfg.listen.clone(),
        advertise: cfg.advertise.clone(),
        max_frame: cfg.max_frame,
        pending_ttl: cfg.timing.timeout / 2,
        localhost_ports: cfg.localhost_ports,
    };
    let transport = ZmqTransport::bind(cfg.id, opts, book, Some(wake))?;
    let mut transport = authenticate(cfg, transport, key, durable.incarnation);
    let start = match &cfg.start {
        StartSpec::JoinEndpoint(ep) => {
            let Some(cid) = contact_id(cfg, ep, saved_book, stop)? else {
                info!(node = cfg.id, "stopped before {ep} answered");
                return Ok(None);
            };
            transport.add_peer(cid, ep.clone());
            StartSpec::Join(cid)
        }
        spec => spec.clone(),
    };
    let info = NodeInfo {
        listen: cfg.listen.clone(),
        advertise: cfg.advertise.clone(),
    };
    Ok(Some(Bound {
        transport,
        info,
        start,
    }))
}

/// Seals frames with the cluster key, or says loudly that there is none.
fn authenticate(
    cfg: &NodeConfig,
    transport: ZmqTransport,
    key: Option<ClusterKey>,
    incarnation: u64,
) -> ZmqTransport {
    let Some(key) = key else {
        warn!(
            node = cfg.id,
            "UNAUTHENTICATED CLUSTER: no cluster key, so any process that can reach {} {}",
            cfg.listen,
            "can take part in elections under any ID (and a high one wins); give every node the same --cluster-key FILE"
        );
        return transport;
    };
    info!(
        node = cfg.id,
        incarnation, "frames are authenticated with the cluster key (HMAC-SHA256)"
    );
    transport.with_auth(Authenticator::new(key, incarnation))
}

/// The ID of the member at `ep` to join through: from the saved address book (so a restarted
/// node does not depend on the contact being up), else asked of it (`None`: stopped first).
fn contact_id(
    cfg: &NodeConfig,
    ep: &str,
    saved_book: Option<&BTreeMap<u64, String>>,
    stop: &AtomicBool,
) -> Result<Option<u64>, NodeError> {
    let known = saved_book.and_then(|b| b.iter().find(|(_, e)| *e == ep).map(|(id, _)| *id));
    let cid = match known {
        Some(id) => id,
        None => match discover_id(ep, cfg.timing.timeout, stop)? {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    if cid == cfg.id {
        return Err(NodeError::Config(format!(
            "--join {ep}: that is this node's own ID ({cid})"
        )));
    }
    Ok(Some(cid))
}

/// The controlled wire: every frame and timer goes through the replayer at `replayer`.
fn bind_controlled(
    cfg: &NodeConfig,
    replayer: &str,
    wake: UnixStream,
) -> Result<Option<Bound<ControlledTransport>>, NodeError> {
    let transport = ControlledTransport::connect(cfg.id, replayer, cfg.max_frame, Some(wake))?;
    let info = NodeInfo {
        listen: replayer.to_string(),
        advertise: replayer.to_string(),
    };
    Ok(Some(Bound {
        transport,
        info,
        start: cfg.start.clone(),
    }))
}

/// Opens the step log file of `cfg`, if any.
pub fn open_step_log(cfg: &NodeConfig) -> Result<Option<StepLog>, NodeError> {
    let Some(path) = &cfg.step_log else {
        return Ok(None);
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| NodeError::Config(format!("step log {}: {e}", path.display())))?;
    Ok(Some(StepLog::new(Box::new(f))))
}

/// A node running on its own thread.
pub struct NodeHandle {
    id: u64,
    changes: Receiver<Change>,
    current: Arc<Mutex<Leadership>>,
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    thread: Option<JoinHandle<Result<(), NodeError>>>,
    _metrics: Option<MetricsServer>,
}

/// Starts a node on its own thread (native wire). Configuration errors that can be found
/// before the node runs (bad key, unreadable storage, metrics address in use) are returned
/// here; later ones by [`NodeHandle::stop`].
pub fn start(cfg: NodeConfig) -> Result<NodeHandle, NodeError> {
    let steplog = open_step_log(&cfg)?;
    // Read here, so that a bad key is an error of `start`, not of the thread.
    let key = load_key(&cfg)?;
    let (mut watchers, server) = watchers(&cfg)?;
    let (tx, changes) = channel();
    watchers.subscribe(tx);
    let current = watchers.current();
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_r, wake_w) =
        UnixStream::pair().map_err(|e| NodeError::Runtime(format!("socketpair: {e}")))?;
    let id = cfg.id;
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(format!("bully-node-{id}"))
        .spawn(move || {
            let controls = Controls {
                steplog,
                stop: flag,
                wake: wake_r,
                watchers,
            };
            run_keyed(&cfg, key, controls)
        })
        .map_err(|e| NodeError::Runtime(format!("spawn: {e}")))?;
    Ok(NodeHandle {
        id,
        changes,
        current,
        stop,
        wake: wake_w,
        thread: Some(thread),
        _metrics: server,
    })
}

impl NodeHandle {
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Leadership changes, in order, from the first role on. The last one is `Stopped`.
    pub fn changes(&self) -> &Receiver<Change> {
        &self.changes
    }
    /// The leadership now.
    pub fn leadership(&self) -> Leadership {
        *self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Stops the node as SIGTERM stops `bully-node run`: a coordinator resigns, the hooks
    /// queued still run, and the last change (`Stopped`) is on [`NodeHandle::changes`].
    /// Returns how the node ended (a second call returns `Ok`).
    pub fn stop(&mut self) -> Result<(), NodeError> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.write_all(&[1]);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(NodeError::Runtime("the node thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
