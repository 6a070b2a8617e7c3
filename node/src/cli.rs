//! Command line: `run`, `status`, `cluster`.

use crate::auth::{self, Authenticator, ClusterKey};
use crate::runtime::{NodeInfo, RunError, Runtime};
use crate::status::{self, ClientError};
use crate::steplog::StepLog;
use crate::storage::{Store, StoreError};
use crate::transport::zmq::{TransportError, ZmqOptions, ZmqTransport};
use crate::wire::{self, DEFAULT_MAX_FRAME};
use bully_model::{Bully, Members, Start, Timing, Variant};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "bully-node",
    version,
    about = "Bully leader election: the model's verified protocol handler on ZeroMQ sockets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run one node.
    ///
    /// Long form: `run --id 5003 --listen tcp://127.0.0.1:5003 --peer 5001=tcp://127.0.0.1:5001 ...`
    /// (full membership: every --peer is a member). The exercise's shorthand, ID = port on
    /// localhost: `run 5001` starts as the first coordinator, `run 5003 5001` joins through the
    /// node on port 5001.
    Run(RunArgs),
    /// Ask a running node for its state and counters.
    Status(StatusArgs),
    /// Start a local cluster of child nodes and drive it from stdin or a script.
    Cluster(crate::cluster::ClusterArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines on stderr: one per role change and election.
    Text,
    /// JSON log lines on stderr, and one NDJSON step per handler call on stdout (or
    /// --step-log FILE).
    Json,
}

/// Which wire a node speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Wire {
    /// JSON envelopes over ROUTER/DEALER (node/PROTOCOL.md).
    Native,
    /// The course exercise's pickled dicts over REQ/REP, port = ID (node/PROTOCOL.md,
    /// "Exercise wire"): joins a cluster of Python exercise nodes.
    Exercise,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 1.5s, 2s)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    if d > Duration::from_secs(24 * 3600) {
        return Err("must be at most 24h".into());
    }
    Ok(d)
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Shorthand: this node's TCP port on localhost, which is also its ID.
    #[arg(value_name = "PORT", conflicts_with_all = ["id", "listen"])]
    pub port: Option<u64>,
    /// Shorthand: the port (= ID) of a running member to join, usually the coordinator.
    /// Without it the node starts as the first coordinator.
    #[arg(
        value_name = "CONTACT_PORT",
        requires = "port",
        conflicts_with = "join"
    )]
    pub contact: Option<u64>,
    /// This node's ID (higher wins the election).
    #[arg(long, value_name = "ID", requires = "listen")]
    pub id: Option<u64>,
    /// Endpoint to bind, e.g. tcp://127.0.0.1:5003 or tcp://*:5003.
    #[arg(long, value_name = "ENDPOINT", requires = "id")]
    pub listen: Option<String>,
    /// Endpoint peers should use to reach this node [default: --listen, with * or 0.0.0.0
    /// replaced by 127.0.0.1].
    #[arg(long, value_name = "ENDPOINT")]
    pub advertise: Option<String>,
    /// A member and where to reach it; repeat for each. Without --join these are the full
    /// membership; with --join they only tell where members are.
    #[arg(long = "peer", value_name = "ID=ENDPOINT")]
    pub peers: Vec<String>,
    /// Join through one running member instead of knowing them all: `ID=ENDPOINT`, `ENDPOINT`
    /// (its ID is asked with a status request) or `ID` (reached at --peer ID's endpoint, else at
    /// tcp://127.0.0.1:ID).
    #[arg(long, value_name = "CONTACT")]
    pub join: Option<String>,
    /// Reach a member whose endpoint nobody told at tcp://127.0.0.1:<ID> (the exercise's
    /// convention; on by default with the shorthand).
    #[arg(long)]
    pub localhost_ports: bool,
    /// Directory for the durable state (bully-<ID>.json). Without it a restarted node forgets
    /// its epoch promise.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Period between a follower's heartbeats (`5s` reproduces the exercise).
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub heartbeat: Duration,
    /// How long to wait for any reply before presuming the peer down; must exceed the worst
    /// round trip (`5s` reproduces the exercise).
    #[arg(long, value_parser = parse_duration, default_value = "1500ms")]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Write the NDJSON step log to FILE (appending), in either log format.
    #[arg(long, value_name = "FILE")]
    pub step_log: Option<PathBuf>,
    /// Largest accepted frame, in bytes; larger ones are dropped and counted.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// The wire: `native`, or `exercise` to speak the Python exercise's protocol (then give
    /// PORT [COORDINATOR_PORT]).
    #[arg(long, value_enum, default_value_t = Wire::Native)]
    pub wire: Wire,
    /// With --wire exercise: the host where every peer's port is reached [default: 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Shared secret of the cluster (at least 16 bytes; the file must be accessible by its
    /// owner only). Every protocol frame then carries an HMAC-SHA256 and a replay stamp, and
    /// frames without a valid one are dropped. Without it the cluster is unauthenticated.
    #[arg(long, value_name = "FILE")]
    pub cluster_key: Option<PathBuf>,
    /// Testing only: run a deliberately broken protocol variant (a mutant of the model), so
    /// the conformance checker can be seen rejecting it.
    #[arg(long, value_enum, default_value_t = Variant::Correct, hide = true)]
    pub variant: Variant,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The node's endpoint (tcp://HOST:PORT) or its port on localhost.
    #[arg(value_name = "ENDPOINT")]
    pub endpoint: String,
    /// Print the full reply as JSON.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the reply.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub timeout: Duration,
}

/// A failure with its exit code: 2 for bad arguments or configuration, 1 at run time.
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Runtime(String),
}

impl Failure {
    pub fn exit(self) -> ExitCode {
        let (code, msg) = match self {
            Failure::Usage(m) => (2, m),
            Failure::Runtime(m) => (1, m),
        };
        eprintln!("bully-node: error: {msg}");
        ExitCode::from(code)
    }
}

/// Everything `run` needs, checked.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    pub id: u64,
    pub listen: String,
    pub advertise: String,
    pub book: BTreeMap<u64, String>,
    pub start: StartSpec,
    pub localhost_ports: bool,
    pub timing: Timing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartSpec {
    Full(Vec<u64>),
    Join(u64),
    /// Join through an endpoint whose ID must be asked first.
    JoinEndpoint(String),
}

fn parse_id_endpoint(s: &str) -> Result<(u64, String), String> {
    let (id, ep) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected ID=ENDPOINT"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: the ID must be an unsigned integer"))?;
    let ep = ep.trim();
    if !wire::valid_connect_endpoint(ep) {
        return Err(format!(
            "{s:?}: invalid endpoint {ep:?} (expected tcp://HOST:PORT or ipc://PATH)"
        ));
    }
    Ok((id, ep.to_string()))
}

fn default_advertise(listen: &str) -> String {
    if let Some(rest) = listen.strip_prefix("tcp://") {
        if let Some((host, port)) = rest.rsplit_once(':') {
            if host == "*" || host == "0.0.0.0" {
                return format!("tcp://127.0.0.1:{port}");
            }
        }
    }
    listen.to_string()
}

/// Checks the arguments of `run` (every error here is a usage error: exit 2).
pub fn setup(a: &RunArgs) -> Result<NodeSetup, String> {
    crate::exercise::check_args(a)?;
    let (id, listen, localhost_ports) = match (a.port, a.id, &a.listen) {
        (Some(port), _, _) => {
            let listen = wire::localhost_endpoint(port)
                .ok_or_else(|| format!("port {port} is not a valid TCP port"))?;
            (port, listen, true)
        }
        (None, Some(id), Some(listen)) => (id, listen.clone(), a.localhost_ports),
        _ => return Err("give PORT [CONTACT_PORT], or --id ID --listen ENDPOINT".into()),
    };
    if usize::try_from(id).is_err() {
        return Err(format!("ID {id} is too large"));
    }
    if !wire::valid_bind_endpoint(&listen) {
        return Err(format!(
            "invalid --listen endpoint {listen:?} (expected tcp://HOST:PORT, tcp://*:PORT or ipc://PATH)"
        ));
    }
    let advertise = a
        .advertise
        .clone()
        .unwrap_or_else(|| default_advertise(&listen));
    if !wire::valid_connect_endpoint(&advertise) {
        return Err(format!(
            "invalid --advertise endpoint {advertise:?} (peers must be able to connect to it)"
        ));
    }
    let mut book = BTreeMap::new();
    for p in &a.peers {
        let (pid, ep) = parse_id_endpoint(p).map_err(|e| format!("--peer {e}"))?;
        if pid == id {
            return Err(format!("--peer {p}: {pid} is this node's own ID"));
        }
        if book.insert(pid, ep).is_some() {
            return Err(format!("--peer: duplicate ID {pid}"));
        }
    }
    let join = match (a.contact, &a.join) {
        (Some(c), _) => Some(c.to_string()),
        (None, j) => j.clone(),
    };
    let start = match join {
        None => StartSpec::Full(book.keys().copied().chain([id]).collect()),
        Some(j) => {
            let spec = if let Ok(cid) = j.trim().parse::<u64>() {
                if let std::collections::btree_map::Entry::Vacant(v) = book.entry(cid) {
                    v.insert(wire::localhost_endpoint(cid).ok_or_else(|| {
                        format!("--join {j}: no --peer {cid}=ENDPOINT and {cid} is not a port")
                    })?);
                }
                StartSpec::Join(cid)
            } else if j.contains('=') {
                let (cid, ep) = parse_id_endpoint(&j).map_err(|e| format!("--join {e}"))?;
                match book.insert(cid, ep.clone()) {
                    Some(old) if old != ep => {
                        return Err(format!("--join {j}: --peer gives {cid} another endpoint"))
                    }
                    _ => {}
                }
                StartSpec::Join(cid)
            } else if wire::valid_connect_endpoint(j.trim()) {
                StartSpec::JoinEndpoint(j.trim().to_string())
            } else {
                return Err(format!(
                    "--join {j:?}: expected ID=ENDPOINT, ENDPOINT (tcp://HOST:PORT) or ID"
                ));
            };
            if spec == StartSpec::Join(id) {
                return Err(format!("--join {j}: a node cannot join through itself"));
            }
            spec
        }
    };
    if a.timeout.is_zero() || a.heartbeat.is_zero() {
        return Err("--heartbeat and --timeout must be greater than zero".into());
    }
    if !(1024..=64 << 20).contains(&a.max_frame) {
        return Err("--max-frame must be between 1024 bytes and 64 MiB".into());
    }
    Ok(NodeSetup {
        id,
        listen,
        advertise,
        book,
        start,
        localhost_ports,
        timing: Timing {
            heartbeat: a.heartbeat,
            timeout: a.timeout,
        },
    })
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Asks the node at `endpoint` for its ID (for `--join ENDPOINT`), until it answers or a
/// signal arrives (`None`).
fn discover_id(
    endpoint: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Option<u64>, Failure> {
    let ctx = zmq::Context::new();
    let mut client = status::StatusClient::connect(&ctx, endpoint)
        .map_err(|e| Failure::Usage(format!("--join: {e}")))?;
    info!("asking {endpoint} for its ID");
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match client.query(timeout) {
            Ok(s) => {
                return s
                    .get("id")
                    .and_then(|v| v.as_u64())
                    .map(Some)
                    .ok_or_else(|| Failure::Runtime(format!("{endpoint} answered without an ID")))
            }
            Err(ClientError::Timeout { .. }) => {
                warn!("{endpoint} did not answer within {timeout:?}; asking again")
            }
            Err(e) => return Err(Failure::Runtime(e.to_string())),
        }
    }
}

/// `bully-node run`.
pub fn run(a: RunArgs) -> Result<(), Failure> {
    let setup = setup(&a).map_err(Failure::Usage)?;
    if a.wire == Wire::Exercise && a.cluster_key.is_some() {
        return Err(Failure::Usage(
            "--cluster-key needs the native wire: the exercise's pickle dicts carry no MAC".into(),
        ));
    }
    let key = match &a.cluster_key {
        Some(path) => Some(ClusterKey::load(path).map_err(|e| Failure::Usage(e.to_string()))?),
        None => None,
    };
    init_logging(a.log_format);
    let _crash_injection = crate::failpoints::setup();

    let store = match &a.data_dir {
        Some(dir) => Some(Store::open(dir, setup.id).map_err(|e| Failure::Usage(e.to_string()))?),
        None => {
            warn!(
                node = setup.id,
                "no --data-dir: the epoch promise is kept in memory only and lost on restart"
            );
            None
        }
    };
    let saved = match &store {
        Some(s) => s.load().map_err(|e| match e {
            StoreError::Corrupt { .. } | StoreError::Read { .. } => Failure::Usage(e.to_string()),
            other => Failure::Runtime(other.to_string()),
        })?,
        None => None,
    };
    let steplog = match (&a.step_log, a.log_format) {
        (Some(path), _) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Failure::Usage(format!("--step-log {}: {e}", path.display())))?;
            Some(StepLog::new(Box::new(f)))
        }
        (None, LogFormat::Json) => Some(StepLog::new(Box::new(std::io::stdout()))),
        (None, LogFormat::Text) => None,
    };

    // Signals: a flag for the loop, and a self-pipe so that a blocked poll wakes at once.
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_r, wake_w) =
        UnixStream::pair().map_err(|e| Failure::Runtime(format!("socketpair: {e}")))?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let reg = signal_hook::flag::register(sig, stop.clone()).and_then(|_| {
            let w = wake_w.try_clone()?;
            signal_hook::low_level::pipe::register(sig, w)
        });
        reg.map_err(|e| Failure::Runtime(format!("signal handler: {e}")))?;
    }

    if a.wire == Wire::Exercise {
        warn!(
            node = setup.id,
            "UNAUTHENTICATED CLUSTER: the exercise wire has no authentication, so any process that can reach port {} can take part in elections under any ID",
            setup.id
        );
        let saved = saved.map(|s| s.storage);
        return crate::exercise::run(&a, &setup, store, saved, steplog, stop, wake_r);
    }
    // Saved endpoints first; the command line wins where both name an ID.
    let mut book = saved.as_ref().map(|s| s.peers.clone()).unwrap_or_default();
    book.extend(setup.book.clone());
    let opts = ZmqOptions {
        listen: setup.listen.clone(),
        advertise: setup.advertise.clone(),
        max_frame: a.max_frame,
        pending_ttl: setup.timing.timeout / 2,
        localhost_ports: setup.localhost_ports,
    };
    let mut transport =
        ZmqTransport::bind(setup.id, opts, book, Some(wake_r)).map_err(|e| match e {
            TransportError::Zmq(_) => Failure::Runtime(e.to_string()),
            _ => Failure::Usage(e.to_string()),
        })?;
    match key {
        None => warn!(
            node = setup.id,
            "UNAUTHENTICATED CLUSTER: no --cluster-key, so any process that can reach {} {}",
            setup.listen,
            "can take part in elections under any ID (and a high one wins); give every node the same --cluster-key FILE"
        ),
        Some(key) => {
            let inc = auth::next_incarnation(a.data_dir.as_deref(), setup.id).map_err(|e| {
                Failure::Usage(format!("--data-dir: cannot record the incarnation: {e}"))
            })?;
            info!(
                node = setup.id,
                incarnation = inc,
                "frames are authenticated with the cluster key (HMAC-SHA256)"
            );
            transport = transport.with_auth(Authenticator::new(key, inc));
        }
    }

    let start = match setup.start.clone() {
        StartSpec::Full(ids) => Start::Full {
            members: Members::new(ids.into_iter().map(wire::id)),
        },
        StartSpec::Join(c) => Start::Join {
            contact: wire::id(c),
        },
        StartSpec::JoinEndpoint(ep) => {
            // A restarted node finds the contact's ID in its saved address book, so it does not
            // depend on the contact being up; otherwise it asks the contact.
            let known = saved
                .as_ref()
                .and_then(|s| s.peers.iter().find(|(_, e)| **e == ep).map(|(id, _)| *id));
            let cid = match known {
                Some(id) => id,
                None => match discover_id(&ep, setup.timing.timeout, &stop)? {
                    Some(id) => id,
                    None => {
                        info!(
                            node = setup.id,
                            "signal received before {ep} answered: stopping"
                        );
                        return Ok(());
                    }
                },
            };
            if cid == setup.id {
                return Err(Failure::Usage(format!(
                    "--join {ep}: that is this node's own ID ({cid})"
                )));
            }
            transport.add_peer(cid, ep);
            Start::Join {
                contact: wire::id(cid),
            }
        }
    };
    let mut actor = Bully::new(start, setup.timing);
    actor.variant = a.variant;
    info!(
        node = setup.id,
        listen = %setup.listen,
        heartbeat = ?setup.timing.heartbeat,
        timeout = ?setup.timing.timeout,
        restored = saved.is_some(),
        "starting"
    );
    let info = NodeInfo {
        listen: setup.listen.clone(),
        advertise: setup.advertise.clone(),
    };
    let rt = Runtime::new(setup.id, actor, transport, store, info, steplog, stop);
    rt.run(saved.map(|s| s.storage)).map_err(|e| match e {
        RunError::Save(_) | RunError::Transport(_) => Failure::Runtime(e.to_string()),
    })?;
    info!(node = setup.id, "stopped");
    Ok(())
}

/// `bully-node status`.
pub fn status(a: StatusArgs) -> Result<(), Failure> {
    let endpoint = status::parse_target(&a.endpoint).map_err(|e| Failure::Usage(e.to_string()))?;
    let s = status::query(&endpoint, a.timeout).map_err(|e| match e {
        ClientError::BadEndpoint(_) => Failure::Usage(e.to_string()),
        other => Failure::Runtime(other.to_string()),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s).expect("JSON value"));
    } else {
        print!("{}", status::render(&s));
    }
    Ok(())
}
