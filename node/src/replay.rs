//! `bully-node replay`: a trace of the model, reproduced step by step on real node processes.
//!
//! The replayer starts one `bully-node run --controlled` process per model process, with fresh
//! data directories and IDs `0..N` (the model's). Those nodes run the real handler, codec,
//! storage and event loop, but every frame they send comes to the replayer and every timer
//! fires only when the replayer says (see [`crate::transport::controlled`]). Then, for each
//! step of the trace:
//!
//! | step | what the replayer does |
//! |---|---|
//! | delivery | hands that exact frame (the one the sender emitted) to its receiver |
//! | timer | fires it |
//! | crash | `SIGKILL` |
//! | recovery | restarts the node with the same data directory |
//! | loss, cut short | discards the frame |
//!
//! After every step it compares each node with the model: a live node's state (from its step
//! log) and the timers it has set; a crashed node's last saved storage. Election tags are
//! compared as the checker names them (a process's current tag, or a stale one:
//! [`bully_model::system::state::renamed`]). The first difference
//! stops the replay. The replayer decides nothing about the protocol: it moves frames as the
//! trace says and compares what the nodes report with what the model recorded.

use crate::storage::Store;
use crate::wire;
use bully_model::properties::{agreement_of, check_epoch_order, single_coordinator_of, Entered};
use bully_model::system::state::{asker, renamed, renamed_state, renamed_storage};
use bully_model::system::StartMode;
use bully_model::trace::{InFlight, TraceAction, TraceFile, TraceProcess};
use bully_model::{
    timer_name, Cmd, Epoch, Event, LoggedStep, Msg, State, Storage, Tag, Timer, Variant,
};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to log a step or send a frame before the replay says it did not.
const PATIENCE: Duration = Duration::from_secs(10);

/// What to replay, and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub trace: PathBuf,
    /// Run this variant instead of the trace's.
    pub variant: Option<Variant>,
    /// Keep the nodes' data, step logs and logs here (default: a temporary directory, removed).
    pub keep_dir: Option<PathBuf>,
    /// The `bully-node` executable to start the nodes with.
    pub bin: PathBuf,
}

/// How a replay ended.
#[derive(Debug)]
pub enum Replayed {
    /// Every step was reproduced; the text says what the real processes reported at the end.
    Reproduced(String),
    /// The nodes did something else than the model at some step (what, where).
    Diverged(String),
}

/// A frame a node sent, held by the replayer until the trace delivers or loses it.
struct Held {
    src: usize,
    dst: usize,
    /// The sender's incarnation when it sent the frame (0: first).
    incarnation: u8,
    msg: Msg,
    payload: Vec<u8>,
}

/// One node process and what the replayer knows of it.
struct Node {
    child: Option<Child>,
    args: Vec<String>,
    /// Its data directory (removed for a recovery that loses its storage).
    data: PathBuf,
    log: PathBuf,
    steps: PathBuf,
    /// How far its step log has been read, in bytes (only whole lines are taken).
    read: u64,
    incarnation: u8,
    state: Option<State>,
    /// Its latest tag ([`State::tag`]), up or down.
    tag: Tag,
    timers: BTreeSet<Timer>,
    saved: Option<Storage>,
    /// Frames received from it that no logged step has accounted for yet (at the start, the
    /// nodes run side by side, so one's frames may come in while another's step is read).
    unclaimed: usize,
    /// Whether the running incarnation has said hello (the replayer can route to it).
    connected: bool,
    /// The highest epoch it accepted, over all its incarnations (the model's ghost state), and
    /// the first step that broke the model's epoch order, if one did.
    accepted: Epoch,
    epoch_order: Option<String>,
}

/// The command line of node `i` of `trace`, under the replayer at `endpoint`, with its data
/// directory and step log. The endpoints given are never bound: every frame goes through the
/// replayer.
fn node_args(
    i: usize,
    trace: &TraceFile,
    variant: Variant,
    endpoint: &str,
    data: &Path,
    steps: &Path,
) -> Vec<String> {
    let dummy = |j: usize| format!("tcp://127.0.0.1:{}", 1 + j);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--id".into(),
        i.to_string(),
        "--listen".into(),
        dummy(i),
        "--controlled".into(),
        endpoint.to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--step-log".into(),
        steps.display().to_string(),
        "--variant".into(),
        clap::ValueEnum::to_possible_value(&variant)
            .expect("every variant has a name")
            .get_name()
            .to_string(),
    ];
    let n = trace.config.processes;
    match trace.config.start {
        StartMode::Full => {
            for j in (0..n).filter(|&j| j != i) {
                args.extend(["--peer".into(), format!("{j}={}", dummy(j))]);
            }
        }
        StartMode::Join if i == 0 => {}
        StartMode::Join => {
            args.extend(["--join".into(), format!("0={}", dummy(0))]);
        }
    }
    args
}

impl Node {
    /// Node `i`, not started yet and without its command line, with its files in `dir` (left
    /// over ones removed).
    fn fresh(i: usize, dir: &Path) -> Node {
        let data = dir.join(format!("node-{i}"));
        let steps = dir.join(format!("node-{i}.steps"));
        let _ = fs::remove_dir_all(&data);
        let _ = fs::remove_file(&steps);
        Node {
            child: None,
            args: Vec::new(),
            data,
            log: dir.join(format!("node-{i}.log")),
            steps,
            read: 0,
            incarnation: 0,
            state: None,
            tag: Tag::default(),
            timers: BTreeSet::new(),
            saved: None,
            unclaimed: 0,
            connected: false,
            accepted: Epoch::none(),
            epoch_order: None,
        }
    }

    /// Which start of its process the running (or last) run is, as the checker numbers
    /// starts: 1 for the first.
    fn start_ordinal(&self) -> u64 {
        u64::from(self.incarnation) + 1
    }
}

/// The replay in progress: the nodes, the replayer's socket, the frames held.
struct Replay {
    nodes: Vec<Node>,
    router: zmq::Socket,
    held: Vec<Held>,
    bin: PathBuf,
    _ctx: zmq::Context,
}

impl Drop for Replay {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Why a replay could not run (one line each).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trace cannot be read (exit 2).
    #[error("{0}")]
    Trace(String),
    /// The nodes or the replayer's socket failed (exit 1).
    #[error("{0}")]
    Run(String),
}

/// Runs the replay.
pub fn run(opts: &ReplayOptions) -> Result<Replayed, ReplayError> {
    let unreadable = |e: String| ReplayError::Trace(format!("{}: {e}", opts.trace.display()));
    let text = fs::read_to_string(&opts.trace).map_err(|e| unreadable(e.to_string()))?;
    let trace = TraceFile::parse(&text).map_err(unreadable)?;
    let variant = opts.variant.unwrap_or(trace.config.variant);
    let (dir, temporary) = match &opts.keep_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("bully-replay-{}", std::process::id())),
            true,
        ),
    };
    fs::create_dir_all(&dir).map_err(|e| ReplayError::Run(format!("{}: {e}", dir.display())))?;
    let result = Replay::start(&trace, variant, &dir, &opts.bin).and_then(|mut r| r.go(&trace));
    if temporary {
        let _ = fs::remove_dir_all(&dir);
    }
    result.map_err(ReplayError::Run)
}

impl Replay {
    /// Binds the replayer's socket and starts every node.
    fn start(
        trace: &TraceFile,
        variant: Variant,
        dir: &Path,
        bin: &Path,
    ) -> Result<Replay, String> {
        let n = trace.config.processes;
        let ctx = zmq::Context::new();
        let router = ctx.socket(zmq::ROUTER).map_err(|e| e.to_string())?;
        router.set_linger(0).map_err(|e| e.to_string())?;
        // A restarted node connects again under the same routing ID: the new connection wins.
        router
            .set_router_handover(true)
            .map_err(|e| e.to_string())?;
        router
            .bind("tcp://127.0.0.1:*")
            .map_err(|e| format!("the replayer cannot bind: {e}"))?;
        let endpoint = router
            .get_last_endpoint()
            .map_err(|e| e.to_string())?
            .map_err(|_| "the replayer's endpoint is not text".to_string())?;
        let nodes = (0..n)
            .map(|i| {
                let mut node = Node::fresh(i, dir);
                node.args = node_args(i, trace, variant, &endpoint, &node.data, &node.steps);
                node
            })
            .collect();
        let mut replay = Replay {
            nodes,
            router,
            held: Vec::new(),
            bin: bin.to_path_buf(),
            _ctx: ctx,
        };
        for i in 0..n {
            replay.spawn(i)?;
        }
        // The model starts every process at once; here they start one after the other, and
        // nothing is delivered before the trace says so.
        for i in 0..n {
            replay.take_step(i)?;
        }
        Ok(replay)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&node.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        crate::child::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        node.child = Some(child);
        node.connected = false;
        Ok(())
    }

    /// Waits for node `i`'s next step-log line and the frames that step sent; applies it to
    /// what the replayer knows of the node.
    fn take_step(&mut self, i: usize) -> Result<LoggedStep, String> {
        let step = self.next_line(i)?;
        let node = &mut self.nodes[i];
        match &step.event.event {
            Event::Start { .. } => node.timers.clear(),
            Event::Timeout { timer } => {
                node.timers.remove(timer);
            }
            _ => {}
        }
        let mut sends = 0;
        for c in &step.commands {
            match c {
                Cmd::SetTimer { timer, .. } => {
                    node.timers.insert(*timer);
                }
                Cmd::CancelTimer { timer } => {
                    node.timers.remove(timer);
                }
                Cmd::Save { storage } => node.saved = Some(storage.clone()),
                Cmd::Send { .. } => sends += 1,
                Cmd::ChooseRandom { .. } => {}
            }
        }
        if let Some(term) = Entered::on_step(step.before.as_ref(), &step.after) {
            if let Err(broken) = check_epoch_order(step.node, &mut node.accepted, term) {
                node.epoch_order
                    .get_or_insert(format!("node {i}: {broken}"));
            }
        }
        node.tag = step.after.tag;
        node.state = Some(step.after.clone());
        self.collect(i, sends)?;
        Ok(step)
    }

    /// The next line of node `i`'s step log (waiting for it).
    fn next_line(&mut self, i: usize) -> Result<LoggedStep, String> {
        let t0 = Instant::now();
        loop {
            let node = &mut self.nodes[i];
            // Only what was appended since the last line taken, and only a whole line: the node
            // flushes each line at once, but a read may race it.
            if let Some(line) = next_whole_line(&node.steps, node.read) {
                node.read += line.len() as u64;
                return serde_json::from_str(&line)
                    .map_err(|e| format!("node {i}'s step log: {e}"));
            }
            if let Some(c) = &mut node.child {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(format!(
                        "node {i} exited ({status}) before its step; see {}",
                        node.log.display()
                    ));
                }
            }
            if t0.elapsed() > PATIENCE {
                return Err(format!("node {i} took no step within {PATIENCE:?}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Receives `count` frames sent by node `i` (frames to a crashed node are lost at once,
    /// as in the model).
    fn collect(&mut self, i: usize, count: usize) -> Result<(), String> {
        let t0 = Instant::now();
        while self.nodes[i].unclaimed < count || !self.nodes[i].connected {
            if t0.elapsed() > PATIENCE {
                return Err(format!(
                    "node {i} logged {count} sends but only {} frames arrived",
                    self.nodes[i].unclaimed
                ));
            }
            if self
                .router
                .poll(zmq::POLLIN, 50)
                .map_err(|e| e.to_string())?
                == 0
            {
                continue;
            }
            let parts = self.router.recv_multipart(0).map_err(|e| e.to_string())?;
            let src: usize = String::from_utf8_lossy(&parts[0])
                .parse()
                .ok()
                .filter(|&src| src < self.nodes.len())
                .ok_or_else(|| "a frame from an unknown node".to_string())?;
            if parts.len() == 2 && parts[1] == b"hello" {
                self.nodes[src].connected = true;
                continue;
            }
            let [_, kind, dst, payload] = &parts[..] else {
                return Err(format!(
                    "a malformed frame from node {src}: {} parts",
                    parts.len()
                ));
            };
            let dst: usize = String::from_utf8_lossy(dst)
                .parse()
                .map_err(|_| "a frame to an unknown node".to_string())?;
            if kind.as_slice() != b"send" || src >= self.nodes.len() || dst >= self.nodes.len() {
                return Err(format!("an unexpected frame from node {src}"));
            }
            let msg = match wire::decode(payload, dst as u64, usize::MAX) {
                Ok(wire::Frame::Peer(env)) => env.msg,
                other => {
                    return Err(format!(
                        "node {src} sent a frame that is no message: {other:?}"
                    ))
                }
            };
            self.nodes[src].unclaimed += 1;
            if self.nodes[dst].child.is_some() {
                self.held.push(Held {
                    src,
                    dst,
                    incarnation: self.nodes[src].incarnation,
                    msg,
                    payload: payload.clone(),
                });
            }
        }
        self.nodes[i].unclaimed -= count;
        Ok(())
    }

    /// Takes the held frame a model message step names (FIFO per connection: the first one
    /// of its sender's incarnation with that content).
    fn take_held(&mut self, m: &InFlight) -> Result<Held, String> {
        let never = || format!("node {} never sent that message to node {}", m.src, m.dst);
        let incarnation = self.nodes[m.src]
            .incarnation
            .checked_sub(m.sent_before_restarts)
            .ok_or_else(never)?;
        let k = self
            .held
            .iter()
            .position(|h| {
                h.src == m.src
                    && h.dst == m.dst
                    && h.incarnation == incarnation
                    && self.as_checked(h) == m.msg
            })
            .ok_or_else(never)?;
        Ok(self.held.remove(k))
    }

    /// A held frame's message as the checker names it.
    fn as_checked(&self, h: &Held) -> Msg {
        match asker(&h.msg, h.src.into(), h.dst.into()) {
            Some(p) => renamed(&h.msg, self.nodes[usize::from(p)].tag),
            None => h.msg.clone(),
        }
    }

    /// Replays every step, comparing after each.
    fn go(&mut self, trace: &TraceFile) -> Result<Replayed, String> {
        if let Some(diff) = self.compare(&trace.initial) {
            return Ok(Replayed::Diverged(format!(
                "replay diverged before the first step: the processes start differently\n{diff}"
            )));
        }
        for step in &trace.steps {
            let done = self.apply(&step.action);
            let diff = match done {
                Ok(()) => self.compare(&step.processes),
                Err(why) => Some(format!("  {why}")),
            };
            if let Some(diff) = diff {
                return Ok(Replayed::Diverged(format!(
                    "replay diverged at step {} of {}: {}\n{diff}",
                    step.step,
                    trace.steps.len(),
                    step.text
                )));
            }
        }
        Ok(Replayed::Reproduced(self.report(trace)))
    }

    /// Does one step of the trace to the real processes.
    fn apply(&mut self, action: &TraceAction) -> Result<(), String> {
        match action {
            TraceAction::Deliver(m) => {
                let held = self.take_held(m)?;
                let id = m.dst.to_string();
                let parts: [&[u8]; 3] = [id.as_bytes(), b"deliver", &held.payload];
                self.router
                    .send_multipart(parts, 0)
                    .map_err(|e| format!("cannot reach node {}: {e}", m.dst))?;
                self.take_step(m.dst).map(|_| ())
            }
            TraceAction::Lose(m) | TraceAction::CutShort(m) => self.take_held(m).map(|_| ()),
            TraceAction::Timeout { process, timer } => {
                let id = process.to_string();
                let name = timer_name(timer);
                let parts: [&[u8]; 3] = [id.as_bytes(), b"fire", name.as_bytes()];
                self.router
                    .send_multipart(parts, 0)
                    .map_err(|e| format!("cannot reach node {process}: {e}"))?;
                self.take_step(*process).map(|_| ())
            }
            TraceAction::Crash { process } => {
                self.await_saved(*process)?;
                let node = &mut self.nodes[*process];
                let mut child = node.child.take().ok_or("the node is not running")?;
                let _ = child.kill();
                let _ = child.wait();
                node.state = None;
                node.timers.clear();
                // What was on its way to it is lost (as in the model).
                self.held.retain(|h| h.dst != *process);
                Ok(())
            }
            TraceAction::Recover { process } => {
                self.nodes[*process].incarnation += 1;
                self.spawn(*process)?;
                self.take_step(*process).map(|_| ())
            }
            TraceAction::RecoverLost { process } => {
                let node = &mut self.nodes[*process];
                // The whole data directory goes, as when a disk is replaced.
                fs::remove_dir_all(&node.data)
                    .map_err(|e| format!("cannot remove {}: {e}", node.data.display()))?;
                node.saved = None;
                node.incarnation += 1;
                self.spawn(*process)?;
                self.take_step(*process).map(|_| ())
            }
        }
    }

    /// Waits until node `i`'s storage file holds what its last logged step saved. The model's
    /// steps are atomic and a crash falls between two of them, but a node logs a step before
    /// executing its commands: the frames a step sends are awaited ([`Replay::take_step`]),
    /// and this awaits its durable write, which a step without sends leaves nothing else to
    /// wait for.
    fn await_saved(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        let Some(expected) = &node.saved else {
            return Ok(());
        };
        let store = Store::open(&node.data, i as u64).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        loop {
            if matches!(store.load(), Ok(Some(s)) if &s.storage == expected) {
                return Ok(());
            }
            if t0.elapsed() > PATIENCE {
                return Err(format!(
                    "node {i} did not save {expected:?} within {PATIENCE:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The first difference between the nodes and the model's processes, as text.
    fn compare(&self, model: &[TraceProcess]) -> Option<String> {
        let mut out = String::new();
        for (i, (node, expected)) in self.nodes.iter().zip(model).enumerate() {
            match expected {
                TraceProcess::Up { state, timers } => {
                    let timers: BTreeSet<Timer> = timers.iter().copied().collect();
                    let checked = node
                        .state
                        .as_ref()
                        .map(|s| renamed_state(s, node.start_ordinal()));
                    if checked.as_ref() != Some(state) || node.timers != timers {
                        let _ = writeln!(
                            out,
                            "  model:  process {i}: {state:?}, timers {timers:?}\n  node {i}:        {}",
                            match &checked {
                                Some(s) => format!("{s:?}, timers {:?}", node.timers),
                                None => "down".into(),
                            }
                        );
                    }
                }
                TraceProcess::Crashed { storage } => {
                    let saved = node
                        .saved
                        .as_ref()
                        .map(|s| renamed_storage(s, node.start_ordinal()));
                    if node.child.is_some() || saved.as_ref() != Some(storage) {
                        let _ = writeln!(
                            out,
                            "  model:  process {i}: crashed, saved {storage:?}\n  node {i}:        {}, saved {:?}",
                            if node.child.is_some() { "running" } else { "down" },
                            node.saved
                        );
                    }
                }
            }
            if !out.is_empty() {
                return Some(out);
            }
        }
        None
    }

    /// What the real processes reported at the end, judged by the model's own properties.
    fn report(&self, trace: &TraceFile) -> String {
        let live: Vec<(usize, &State)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.state.as_ref().map(|s| (i, s)))
            .collect();
        let mut out = format!(
            "trace reproduced on {} real processes: {} steps, every process as the model has it\n",
            self.nodes.len(),
            trace.steps.len()
        );
        for (i, s) in &live {
            let _ = writeln!(
                out,
                "  node {i}: {}",
                crate::leadership::describe_role(&s.role)
            );
        }
        for node in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.state.is_none())
        {
            let _ = writeln!(out, "  node {}: down", node.0);
        }
        let states = live.iter().map(|(_, s)| *s);
        let coordinators: Vec<String> = live
            .iter()
            .filter(|(_, s)| s.is_coordinator())
            .map(|(i, s)| {
                format!(
                    "node {i} (epoch {})",
                    s.epoch().map_or("-".into(), |e| e.to_string())
                )
            })
            .collect();
        let verdicts = [
            ("single coordinator", single_coordinator_of(states.clone())),
            ("agreement", agreement_of(states)),
        ];
        for (name, holds) in verdicts {
            if !holds {
                let _ = writeln!(out, "{name} VIOLATED on the real processes");
            }
        }
        for broken in self.nodes.iter().filter_map(|n| n.epoch_order.as_ref()) {
            let _ = writeln!(out, "epoch order VIOLATED on the real processes: {broken}");
        }
        if !coordinators.is_empty() {
            let _ = writeln!(out, "coordinators: {}", coordinators.join(", "));
        }
        if let Some(p) = &trace.property {
            let _ = writeln!(
                out,
                "the trace ends at: {} ({} {})",
                p.name, p.kind, p.verdict
            );
            if p.kind == "liveness" {
                let _ = writeln!(
                    out,
                    "the real processes are in the state from which, the model says, no \
                     fault-free execution settles"
                );
            }
        }
        out
    }
}

/// The whole line (newline included) that starts at byte `from` of `file`, if it has been
/// written yet.
fn next_whole_line(file: &Path, from: u64) -> Option<String> {
    use std::io::{BufRead, BufReader, Seek, SeekFrom};
    let mut f = fs::File::open(file).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut line = String::new();
    BufReader::new(f).read_line(&mut line).ok()?;
    line.ends_with('\n').then_some(line)
}
