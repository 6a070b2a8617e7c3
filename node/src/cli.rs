//! Command line: `run`, `status`, `cluster`.

use crate::config::{parse_duration, ClusterFile};
pub use crate::failure::Failure;
use crate::hooks::{self, Hooks};
use crate::node::{self as library, default_advertise, NodeError};
pub use crate::node::{NodeConfig, StartSpec};
use crate::status::{self, ClientError};
use crate::steplog::StepLog;
use crate::wire::{self, DEFAULT_MAX_FRAME};
use bully_model::{Durations, Variant};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

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
    Run(Box<RunArgs>),
    /// Ask a running node for its state and counters.
    Status(StatusArgs),
    /// Start a local cluster of child nodes and drive it from stdin or a script.
    Cluster(crate::cluster::ClusterArgs),
    /// Reproduce a model trace (`bully-model check|simulate --trace-out FILE`) step by step on
    /// real node processes, comparing every process with the model after each step.
    Replay(ReplayArgs),
    /// Run an implementation of the course exercise under faults and judge it (see the guide
    /// page "Testing your exercise").
    Workbench(Box<crate::workbench::WorkbenchArgs>),
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The trace file.
    #[arg(value_name = "FILE")]
    pub trace: PathBuf,
    /// Run this protocol variant instead of the trace's (e.g. `correct`, to see where the
    /// verified handler does something else than a mutant's counterexample).
    #[arg(long, value_enum)]
    pub variant: Option<Variant>,
    /// Keep the nodes' data directories, step logs and logs in DIR [default: a temporary
    /// directory, removed at the end].
    #[arg(long, value_name = "DIR")]
    pub keep_dir: Option<PathBuf>,
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
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,
    /// The cluster config file every host can share (TOML: timing, key, data directory,
    /// metrics, hooks and `[members]`, this node included); flags win over it.
    #[arg(long, value_name = "FILE", requires = "id")]
    pub config: Option<PathBuf>,
    /// Endpoint to bind, e.g. tcp://127.0.0.1:5003 or tcp://*:5003 [default: this node's own
    /// endpoint in --config or --peer].
    #[arg(long, value_name = "ENDPOINT", requires = "id")]
    pub listen: Option<String>,
    /// Endpoint peers should use to reach this node [default: --listen, with * or 0.0.0.0
    /// replaced by 127.0.0.1].
    #[arg(long, value_name = "ENDPOINT")]
    pub advertise: Option<String>,
    /// A member and where to reach it; repeat for each. Without --join these are the full
    /// membership; with --join they only tell where members are. This node's own ID may be
    /// listed too (so every host can share one list), with the endpoint it advertises.
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
    /// Period between a follower's heartbeats (`5s` reproduces the exercise) [default: 500ms].
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat: Option<Duration>,
    /// How long to wait for any reply before presuming the peer down; must exceed the worst
    /// round trip (`5s` reproduces the exercise) [default: 1500ms].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
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
    /// Run this shell command when the node takes office (environment: BULLY_ID, BULLY_ROLE,
    /// BULLY_PREVIOUS_ROLE, BULLY_COORDINATOR, BULLY_EPOCH).
    #[arg(long, value_name = "CMD")]
    pub on_coordinator: Option<String>,
    /// Run this shell command when the node stops acting as coordinator (deposed, halted or
    /// shutting down).
    #[arg(long, value_name = "CMD")]
    pub on_step_down: Option<String>,
    /// Run this shell command on every change of role, of whom the node follows, or of the
    /// epoch.
    #[arg(long, value_name = "CMD")]
    pub on_change: Option<String>,
    /// Kill a hook still running after this long [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub hook_timeout: Option<Duration>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Testing only: run a deliberately broken protocol variant (a mutant of the model), so
    /// the conformance checker can be seen rejecting it.
    #[arg(long, value_enum, default_value_t = Variant::Correct, hide = true)]
    pub variant: Variant,
    /// Replay only (`bully-node replay` starts nodes with it): every frame and timer goes
    /// through the replayer at this endpoint.
    #[arg(long, value_name = "ENDPOINT", hide = true)]
    pub controlled: Option<String>,
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
    /// Keep watching: print a line at every role change, as it happens, until interrupted
    /// (with `--json`, one status object per line).
    #[arg(long)]
    pub watch: bool,
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

/// Checks the arguments of `run` (every error here is a usage error: exit 2).
pub fn setup(a: &RunArgs) -> Result<NodeConfig, String> {
    check_exercise_args(a)?;
    // The config file's values (none without one); a flag wins over each.
    let file = match &a.config {
        Some(path) => ClusterFile::load(path)?,
        None => ClusterFile::default(),
    };
    let (id, localhost_ports) = node_id(a)?;
    let Named {
        mut book,
        own,
        own_flag,
    } = named_members(a, &file, id)?;
    let listen = listen_endpoint(a, id, own.as_deref())?;
    let advertise =
        advertised(&listen, a.advertise.as_deref(), own.as_deref()).map_err(
            |why| match &own_flag {
                Some(p) => format!("--peer {p}: this node's own ID, but {why}"),
                None => format!("member {id} of the config file: {why}"),
            },
        )?;
    if !wire::valid_connect_endpoint(&advertise) {
        return Err(format!(
            "invalid --advertise endpoint {advertise:?} (peers must be able to connect to it)"
        ));
    }
    let start = start_spec(a, id, &mut book)?;
    if !(1024..=64 << 20).contains(&a.max_frame) {
        return Err("--max-frame must be between 1024 bytes and 64 MiB".into());
    }
    if a.wire == Wire::Exercise && a.cluster_key.is_some() {
        return Err(
            "--cluster-key needs the native wire: the exercise's pickle dicts carry no MAC".into(),
        );
    }
    Ok(NodeConfig {
        id,
        listen,
        advertise,
        book,
        start,
        localhost_ports,
        timing: timing(a, &file),
        data_dir: a.data_dir.clone().or(file.data_dir.clone()),
        cluster_key: a.cluster_key.clone().or(file.cluster_key.clone()),
        max_frame: a.max_frame,
        step_log: a.step_log.clone(),
        hooks: hooks(a, &file),
        metrics: a.metrics.or(file.metrics),
        variant: a.variant,
        controlled: a.controlled.clone(),
    })
}

/// This node's ID, and whether members nobody gave an endpoint for are reached at their
/// localhost port (always with the shorthand).
fn node_id(a: &RunArgs) -> Result<(u64, bool), String> {
    let (id, localhost_ports) = match (a.port, a.id) {
        (Some(port), _) => (port, true),
        (None, Some(id)) => (id, a.localhost_ports),
        _ => return Err("give PORT [CONTACT_PORT], or --id ID (with --listen ENDPOINT, a --peer for this ID, or --config FILE)".into()),
    };
    if usize::try_from(id).is_err() {
        return Err(format!("ID {id} is too large"));
    }
    Ok((id, localhost_ports))
}

/// Every member named, this node's own entry taken out.
struct Named {
    book: BTreeMap<u64, String>,
    /// This node's own endpoint, if listed.
    own: Option<String>,
    /// The `--peer` flag that listed it, if one did.
    own_flag: Option<String>,
}

/// The members of the config file, then of `--peer` (which wins), this node possibly among
/// them.
fn named_members(a: &RunArgs, file: &ClusterFile, id: u64) -> Result<Named, String> {
    let mut book: BTreeMap<u64, String> = file.members.clone();
    let mut own_flag = None;
    let mut flagged = std::collections::BTreeSet::new();
    for p in &a.peers {
        let (pid, ep) = parse_id_endpoint(p).map_err(|e| format!("--peer {e}"))?;
        if !flagged.insert(pid) {
            return Err(format!("--peer: duplicate ID {pid}"));
        }
        if pid == id {
            own_flag = Some(p.clone());
        }
        book.insert(pid, ep);
    }
    let own = book.remove(&id);
    if let (Some(path), None) = (&a.config, &own) {
        return Err(format!(
            "--config {}: key `members`: no member {id} (this node's --id)",
            path.display()
        ));
    }
    Ok(Named {
        book,
        own,
        own_flag,
    })
}

/// The endpoint to bind: the shorthand's port, `--listen`, or this node's own listed endpoint.
fn listen_endpoint(a: &RunArgs, id: u64, own: Option<&str>) -> Result<String, String> {
    let listen = match (a.port, &a.listen, own) {
        (Some(port), _, _) => wire::localhost_endpoint(port)
            .ok_or_else(|| format!("port {port} is not a valid TCP port"))?,
        (None, Some(listen), _) => listen.clone(),
        (None, None, Some(own)) => own.to_string(),
        (None, None, None) => {
            return Err(format!(
            "give --listen ENDPOINT, or list this node's own ID ({id}) with --peer or in --config"
        ))
        }
    };
    if !wire::valid_bind_endpoint(&listen) {
        return Err(format!(
            "invalid --listen endpoint {listen:?} (expected tcp://HOST:PORT, tcp://*:PORT or ipc://PATH)"
        ));
    }
    Ok(listen)
}

/// How the node starts: with every member in `book`, or joining through the shorthand's
/// contact port or `--join` (whose endpoint, when given, goes into `book`).
fn start_spec(a: &RunArgs, id: u64, book: &mut BTreeMap<u64, String>) -> Result<StartSpec, String> {
    let join = match (a.contact, &a.join) {
        (Some(c), _) => Some(c.to_string()),
        (None, j) => j.clone(),
    };
    let Some(j) = join else {
        return Ok(StartSpec::Full(book.keys().copied().chain([id]).collect()));
    };
    let spec = join_through(&j, book)?;
    if spec == StartSpec::Join(id) {
        return Err(format!("--join {j}: a node cannot join through itself"));
    }
    Ok(spec)
}

/// The contact `j` of a join: `ID`, `ID=ENDPOINT` or `ENDPOINT`.
fn join_through(j: &str, book: &mut BTreeMap<u64, String>) -> Result<StartSpec, String> {
    if let Ok(cid) = j.trim().parse::<u64>() {
        if let std::collections::btree_map::Entry::Vacant(v) = book.entry(cid) {
            v.insert(wire::localhost_endpoint(cid).ok_or_else(|| {
                format!("--join {j}: no --peer {cid}=ENDPOINT and {cid} is not a port")
            })?);
        }
        Ok(StartSpec::Join(cid))
    } else if j.contains('=') {
        let (cid, ep) = parse_id_endpoint(j).map_err(|e| format!("--join {e}"))?;
        match book.insert(cid, ep.clone()) {
            Some(old) if old != ep => {
                Err(format!("--join {j}: --peer gives {cid} another endpoint"))
            }
            _ => Ok(StartSpec::Join(cid)),
        }
    } else if wire::valid_connect_endpoint(j.trim()) {
        Ok(StartSpec::JoinEndpoint(j.trim().to_string()))
    } else {
        Err(format!(
            "--join {j:?}: expected ID=ENDPOINT, ENDPOINT (tcp://HOST:PORT) or ID"
        ))
    }
}

/// The protocol's timing: each flag, else the config file, else the default.
fn timing(a: &RunArgs, file: &ClusterFile) -> Durations {
    let default = Durations::default();
    Durations {
        heartbeat: a.heartbeat.or(file.heartbeat).unwrap_or(default.heartbeat),
        timeout: a.timeout.or(file.timeout).unwrap_or(default.timeout),
    }
}

/// The hooks: each flag, else the config file.
fn hooks(a: &RunArgs, file: &ClusterFile) -> Hooks {
    Hooks {
        on_coordinator: a.on_coordinator.clone().or(file.on_coordinator.clone()),
        on_step_down: a.on_step_down.clone().or(file.on_step_down.clone()),
        on_change: a.on_change.clone().or(file.on_change.clone()),
        timeout: a
            .hook_timeout
            .or(file.hook_timeout)
            .unwrap_or(hooks::DEFAULT_TIMEOUT),
    }
}

/// The options that make no sense on the exercise wire (where port = ID on one host).
fn check_exercise_args(a: &RunArgs) -> Result<(), String> {
    if a.wire != Wire::Exercise {
        if a.host.is_some() {
            return Err("--host is for --wire exercise (the native wire takes endpoints)".into());
        }
        return Ok(());
    }
    if a.port.is_none() {
        return Err(
            "--wire exercise takes the exercise's arguments: PORT [COORDINATOR_PORT]".into(),
        );
    }
    for (given, name) in [
        (a.id.is_some() || a.listen.is_some(), "--id/--listen"),
        (a.config.is_some(), "--config"),
        (a.advertise.is_some(), "--advertise"),
        (!a.peers.is_empty(), "--peer"),
        (a.join.is_some(), "--join"),
    ] {
        if given {
            return Err(format!(
                "{name} is not available with --wire exercise (port = ID, peers at --host)"
            ));
        }
    }
    if let Some(h) = &a.host {
        if !wire::valid_connect_endpoint(&format!("tcp://{h}:1")) || h.contains('/') {
            return Err(format!("--host {h:?}: expected a host name or address"));
        }
    }
    Ok(())
}

/// The endpoint this node advertises: `--advertise`, else its own listed endpoint, else the
/// listen endpoint. A listed own endpoint must be the advertised one (else the reason).
fn advertised(listen: &str, flag: Option<&str>, own: Option<&str>) -> Result<String, String> {
    let Some(own) = own else {
        return Ok(flag.map_or_else(|| default_advertise(listen), str::to_string));
    };
    if let Some(flag) = flag {
        return if flag == own {
            Ok(own.to_string())
        } else {
            Err(format!("it is listed at {own} and --advertise says {flag}"))
        };
    }
    // Binding every interface at the listed port is listening where the list says.
    let port = |ep: &str| ep.rsplit_once(':').map(|(_, p)| p.to_string());
    let wildcard = listen.starts_with("tcp://*:") || listen.starts_with("tcp://0.0.0.0:");
    if listen == own || (wildcard && port(listen) == port(own)) {
        Ok(own.to_string())
    } else {
        Err(format!(
            "it is listed at {own} and listens at {listen} (give --advertise {own} if peers reach it there)"
        ))
    }
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

/// `bully-node run`.
pub fn run(a: RunArgs) -> Result<(), Failure> {
    let cfg = setup(&a).map_err(Failure::Usage)?;
    init_logging(a.log_format);
    let _crash_injection = crate::failpoints::setup();
    let steplog = match (library::open_step_log(&cfg), a.log_format) {
        (Ok(Some(log)), _) => Some(log),
        (Ok(None), LogFormat::Json) => Some(StepLog::new(Box::new(std::io::stdout()))),
        (Ok(None), LogFormat::Text) => None,
        (Err(e), _) => return Err(e.into()),
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
    let (watchers, _metrics) = library::watchers(&cfg)?;
    let controls = library::Controls {
        steplog,
        stop,
        wake: wake_r,
        watchers,
    };

    if a.wire == Wire::Exercise {
        warn!(
            node = cfg.id,
            "UNAUTHENTICATED CLUSTER: the exercise wire has no authentication, so any process that can reach port {} can take part in elections under any ID",
            cfg.id
        );
        let host = a.host.as_deref().unwrap_or("127.0.0.1");
        crate::exercise::run(&cfg, host, controls)?;
        return Ok(());
    }
    library::run(&cfg, controls)?;
    Ok(())
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Failure {
        match e {
            NodeError::Config(m) => Failure::Usage(m),
            NodeError::Runtime(m) => Failure::Runtime(m),
        }
    }
}

/// `bully-node status`.
/// `bully-node replay`: exit 0 when the trace is reproduced, 1 where it diverges.
pub fn replay(a: ReplayArgs) -> Result<(), Failure> {
    let bin = std::env::current_exe()
        .map_err(|e| Failure::Runtime(format!("cannot find this executable: {e}")))?;
    let opts = crate::replay::ReplayOptions {
        trace: a.trace,
        variant: a.variant,
        keep_dir: a.keep_dir,
        bin,
    };
    let outcome = crate::replay::run(&opts).map_err(|e| match e {
        crate::replay::ReplayError::Trace(m) => Failure::Usage(m),
        crate::replay::ReplayError::Run(m) => Failure::Runtime(m),
    })?;
    match outcome {
        crate::replay::Replayed::Reproduced(report) => {
            print!("{report}");
            Ok(())
        }
        crate::replay::Replayed::Diverged(report) => {
            print!("{report}");
            Err(Failure::Runtime(
                "the real processes diverged from the trace (see above)".into(),
            ))
        }
    }
}

pub fn status(a: StatusArgs) -> Result<(), Failure> {
    let endpoint = status::parse_target(&a.endpoint).map_err(|e| Failure::Usage(e.to_string()))?;
    let s = status::query(&endpoint, a.timeout).map_err(|e| match e {
        ClientError::BadEndpoint(_) => Failure::Usage(e.to_string()),
        other => Failure::Runtime(other.to_string()),
    })?;
    if a.watch {
        return watch(&endpoint, s, &a);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s).expect("JSON value"));
    } else {
        print!("{}", status::render(&s));
    }
    Ok(())
}

/// `status --watch`: one line per role change, from a status request that the node answers at
/// its next role change (or after [`WATCH_WAIT`], and then it is asked again).
fn watch(endpoint: &str, first: status::Status, a: &StatusArgs) -> Result<(), Failure> {
    const WATCH_WAIT: Duration = Duration::from_secs(10);
    let line = |s: &status::Status| {
        if a.json {
            println!("{}", serde_json::to_string(s).expect("JSON value"));
        } else {
            let role = s.role_text.as_deref().unwrap_or("starting");
            println!("{} {}: {role}", wire::unix_ms(), s.id);
        }
    };
    line(&first);
    let runtime = |e: status::ClientError| Failure::Runtime(e.to_string());
    let ctx = zmq::Context::new();
    let mut client = status::StatusClient::connect(&ctx, endpoint).map_err(runtime)?;
    let mut known = Some((first.pid, first.role_changes));
    loop {
        // A restarted node (another pid) counts its role changes from zero again: ask plainly.
        let watch = known.map(|(_, role_changes)| wire::Watch {
            role_changes,
            wait: WATCH_WAIT,
        });
        let nonce = client.ask(watch).map_err(runtime)?;
        let deadline = std::time::Instant::now() + WATCH_WAIT + a.timeout;
        let mut answer = None;
        while answer.is_none() && std::time::Instant::now() < deadline {
            let mut items = [client.poll_item()];
            match zmq::poll(&mut items, 100) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(Failure::Runtime(e.to_string())),
            }
            while let Some((n, s)) = client.try_reply().map_err(runtime)? {
                if n == Some(nonce) {
                    answer = Some(s);
                }
            }
        }
        match answer {
            Some(s) => {
                if known != Some((s.pid, s.role_changes)) {
                    line(&s);
                }
                known = Some((s.pid, s.role_changes));
            }
            None => {
                eprintln!("no status reply from {endpoint}; asking again");
                known = None;
            }
        }
    }
}
