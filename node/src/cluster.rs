//! `bully-node cluster`: a local cluster of child processes, watched through `status`, driven
//! from stdin or a script.
//!
//! Each running node always holds one status request of the launcher that waits for its next
//! role change ([`wire::Watch`]): a change is seen as it happens, and a settled node answers
//! once every [`WATCH_WAIT`] (asking every node many times a second cost a 64-node cluster's
//! coordinator more CPU than its heartbeats, BENCHMARKS.md).
//!
//! Children are this same binary (`run`, full membership, ID = port on 127.0.0.1), each in its
//! own process group (so a terminal's Ctrl-C reaches only the launcher) and with
//! `PR_SET_PDEATHSIG = SIGKILL` (so none outlives the launcher, even if it is killed with -9).

use crate::chaos;
use crate::config::parse_duration;
use crate::failure::Failure;
use crate::status::{Status, StatusClient};
use crate::wire;
use bully_model::conformance;
use clap::Args;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub nodes: u16,
    /// Port (= ID) of the first node; the others follow.
    #[arg(long, default_value_t = 5001)]
    pub base_port: u16,
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub heartbeat: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "1500ms")]
    pub timeout: Duration,
    /// Where the nodes keep their state and logs (node-<ID>.log) [default: a temporary
    /// directory, removed at the end].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Commands to run at given times, one per line: `at 3s kill 5003` (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// How often the launcher looks at its input, script and children (a node's role change
    /// is reported as it happens).
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    pub poll: Duration,
    /// Also pass `--log-format json` to the nodes (their step logs go to node-<ID>.steps).
    #[arg(long)]
    pub step_logs: bool,
    /// The cluster key file every node gets (`run --cluster-key`); checked before any node
    /// starts.
    #[arg(long, value_name = "FILE")]
    pub cluster_key: Option<PathBuf>,
    /// Inject random faults (the nemesis): a schedule drawn from SEED alone, printed as
    /// `--script` lines, run for --duration; then the nodes' step logs are judged against the
    /// model and the verdict printed (exit status as `conformance`'s: 0 conforms, 1 violation,
    /// 3 conforms only after leaving an assumption). Implies --step-logs.
    #[arg(long, value_name = "SEED", conflicts_with = "script")]
    pub chaos: Option<u64>,
    /// How long a --chaos run lasts.
    #[arg(long, value_parser = parse_duration, default_value = "60s", requires = "chaos")]
    pub duration: Duration,
    /// The faults --chaos may inject (comma-separated): kill, restart, pause.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,restart"
    )]
    pub faults: Vec<crate::chaos::Fault>,
    /// Nodes --chaos keeps running and unpaused at every moment [default: half of --nodes,
    /// rounded down, at least 1].
    #[arg(long, value_name = "N", requires = "chaos")]
    pub min_up: Option<usize>,
    /// Testing only: the protocol variant every node runs (see `run --variant`).
    #[arg(long, value_enum, default_value_t = bully_model::Variant::Correct, hide = true)]
    pub variant: bully_model::Variant,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Kill(u64),
    Restart(u64),
    Pause(u64),
    Resume(u64),
    Status,
    Quit,
    Help,
}

fn parse_action(line: &str) -> Result<Option<Action>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let id = |w: Option<&&str>| -> Result<u64, String> {
        w.ok_or("missing node ID")?
            .parse::<u64>()
            .map_err(|_| "the node ID must be a number".to_string())
    };
    Ok(Some(match words.first().copied() {
        None => return Ok(None),
        Some("kill") => Action::Kill(id(words.get(1))?),
        Some("restart") => Action::Restart(id(words.get(1))?),
        Some("pause") => Action::Pause(id(words.get(1))?),
        Some("resume") => Action::Resume(id(words.get(1))?),
        Some("status") => Action::Status,
        Some("quit") | Some("exit") => Action::Quit,
        Some("help") | Some("?") => Action::Help,
        Some(other) => return Err(format!("unknown command {other:?} (try help)")),
    }))
}

/// `at 3s kill 5003` lines, sorted by time.
fn parse_script(text: &str) -> Result<Vec<(Duration, Action)>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("line {}: {m}: {raw:?}", n + 1);
        let rest = line
            .strip_prefix("at ")
            .ok_or_else(|| err("expected `at TIME COMMAND`".into()))?;
        let (when, cmd) = rest
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("expected `at TIME COMMAND`".into()))?;
        let when = humantime::parse_duration(when).map_err(|e| err(e.to_string()))?;
        let action = parse_action(cmd)
            .map_err(err)?
            .ok_or_else(|| err("missing command".into()))?;
        out.push((when, action));
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
struct View {
    role: String,
    role_text: String,
    coordinator: Option<u64>,
    epoch: Option<String>,
    is_coordinator: bool,
}

impl View {
    fn from(s: &Status) -> View {
        View {
            role: s.role.clone().unwrap_or_default(),
            role_text: s.role_text.clone().unwrap_or_default(),
            coordinator: s.coordinator.map(|c| usize::from(c) as u64),
            epoch: s.epoch_text.clone(),
            is_coordinator: s.is_coordinator,
        }
    }
    fn key(&self) -> (String, Option<String>) {
        (self.role.clone(), self.epoch.clone())
    }
}

/// How long a node holds the launcher's status request while its role does not change.
const WATCH_WAIT: Duration = Duration::from_secs(1);
/// A request unanswered this long after its wait is given up (the node was paused or
/// restarted meanwhile) and asked again.
const WATCH_GRACE: Duration = Duration::from_secs(1);

struct Node {
    id: u64,
    child: Option<Child>,
    /// Whether it was started before (a later start is a restart).
    started: bool,
    paused: bool,
    client: StatusClient,
    /// The launcher's outstanding status request: its nonce and when it left.
    asked: Option<(u64, Instant)>,
    view: Option<View>,
    last_status: Option<Status>,
}

struct Cluster {
    exe: PathBuf,
    dir: PathBuf,
    args: ClusterArgs,
    nodes: BTreeMap<u64, Node>,
    start: Instant,
    /// The (coordinator, epoch) everyone agreed on last.
    agreed: Option<(u64, String)>,
    /// Since when, and why, the cluster has not agreed.
    disrupted: Option<(Instant, String)>,
}

fn stamp(start: Instant) -> String {
    format!("[{:>9.3}s]", start.elapsed().as_secs_f64())
}

impl Cluster {
    fn say(&self, line: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {}", stamp(self.start), line.as_ref());
        let _ = out.flush();
    }

    fn spawn(&mut self, id: u64) -> Result<(), String> {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        let dur = |d: Duration| humantime::format_duration(d).to_string();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("run")
            .args(["--id", &id.to_string()])
            .args(["--listen", &format!("tcp://127.0.0.1:{id}")])
            .args(["--heartbeat", &dur(self.args.heartbeat)])
            .args(["--timeout", &dur(self.args.timeout)])
            .arg("--data-dir")
            .arg(&self.dir);
        for p in ids.iter().filter(|&&p| p != id) {
            cmd.args(["--peer", &format!("{p}=tcp://127.0.0.1:{p}")]);
        }
        if let Some(key) = &self.args.cluster_key {
            cmd.arg("--cluster-key").arg(key);
        }
        if self.args.variant != bully_model::Variant::Correct {
            let v = clap::ValueEnum::to_possible_value(&self.args.variant).expect("named");
            cmd.args(["--variant", v.get_name()]);
        }
        if self.args.step_logs {
            cmd.args(["--log-format", "json", "--step-log"])
                .arg(self.dir.join(format!("node-{id}.steps")));
        }
        if self.nodes.get(&id).is_some_and(|n| n.started) {
            // A restart is a clean start: crash injection (node/src/failpoints.rs), if the
            // launcher was given any, armed only the first start.
            cmd.env_remove("FAILPOINTS");
        }
        let log_path = self.dir.join(format!("node-{id}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        crate::child::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let node = self.nodes.get_mut(&id).expect("known node");
        node.child = Some(child);
        node.started = true;
        node.paused = false;
        node.view = None;
        node.last_status = None;
        node.asked = None;
        Ok(())
    }

    fn signal(&self, id: u64, sig: libc::c_int) -> bool {
        match self.nodes.get(&id).and_then(|n| n.child.as_ref()) {
            Some(c) => unsafe { libc::kill(c.id() as libc::pid_t, sig) == 0 },
            None => false,
        }
    }

    fn disrupt(&mut self, why: String) {
        if self.disrupted.is_none() {
            self.disrupted = Some((Instant::now(), why));
        }
    }

    fn act(&mut self, action: Action) -> bool {
        let known = |c: &Cluster, id: u64| {
            if c.nodes.contains_key(&id) {
                true
            } else {
                c.say(format!("no node {id}"));
                false
            }
        };
        match action {
            Action::Kill(id) if known(self, id) => {
                if self.signal(id, libc::SIGKILL) {
                    let n = self.nodes.get_mut(&id).expect("known");
                    if let Some(mut c) = n.child.take() {
                        let _ = c.wait();
                    }
                    n.view = None;
                    n.paused = false;
                    self.say(format!("killed {id} (SIGKILL)"));
                    self.disrupt(format!("kill {id}"));
                } else {
                    self.say(format!("{id} is not running"));
                }
            }
            Action::Restart(id) if known(self, id) => {
                if self.signal(id, libc::SIGKILL) {
                    if let Some(mut c) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
                        let _ = c.wait();
                    }
                }
                match self.spawn(id) {
                    Ok(()) => {
                        let pid = self.nodes[&id].child.as_ref().map_or(0, Child::id);
                        self.say(format!("restarted {id} (pid {pid})"));
                        self.disrupt(format!("restart {id}"));
                    }
                    Err(e) => self.say(format!("restart {id} failed: {e}")),
                }
            }
            Action::Pause(id) if known(self, id) => {
                if self.signal(id, libc::SIGSTOP) {
                    self.nodes.get_mut(&id).expect("known").paused = true;
                    self.say(format!("paused {id} (SIGSTOP)"));
                    self.disrupt(format!("pause {id}"));
                } else {
                    self.say(format!("{id} is not running"));
                }
            }
            Action::Resume(id) if known(self, id) => {
                if self.signal(id, libc::SIGCONT) {
                    self.nodes.get_mut(&id).expect("known").paused = false;
                    self.say(format!("resumed {id} (SIGCONT)"));
                    self.disrupt(format!("resume {id}"));
                } else {
                    self.say(format!("{id} is not running"));
                }
            }
            Action::Status => self.print_status(),
            Action::Help => {
                self.say("commands: kill ID | restart ID | pause ID | resume ID | status | quit")
            }
            Action::Quit => return false,
            _ => {}
        }
        true
    }

    fn print_status(&self) {
        self.say(format!(
            "{:<7} {:<8} {:<8} {:<40} {:<6} {:<12} {:<8} {}",
            "ID", "PID", "PROCESS", "ROLE", "COORD", "EPOCH", "DROPPED", "MEMBERS"
        ));
        for n in self.nodes.values() {
            let process = match (&n.child, n.paused) {
                (None, _) => "down",
                (Some(_), true) => "paused",
                (Some(_), false) => "running",
            };
            let pid = n
                .child
                .as_ref()
                .map_or("-".to_string(), |c| c.id().to_string());
            let s = n.last_status.as_ref().filter(|_| n.child.is_some());
            let field = |f: fn(&Status) -> Option<String>| s.and_then(f).unwrap_or("-".into());
            let members = field(|s| s.members.as_ref().map(|m| m.len().to_string()));
            println!(
                "            {:<7} {:<8} {:<8} {:<40} {:<6} {:<12} {:<8} {}",
                n.id,
                pid,
                process,
                field(|s| s.role_text.clone()),
                field(|s| s.coordinator.map(|c| usize::from(c).to_string())),
                field(|s| s.epoch_text.clone()),
                field(|s| Some(s.dropped_total.to_string())),
                members
            );
        }
    }

    /// Reaps children that exited on their own.
    fn reap(&mut self) {
        let mut exited = Vec::new();
        for n in self.nodes.values_mut() {
            if let Some(c) = &mut n.child {
                if let Ok(Some(status)) = c.try_wait() {
                    n.child = None;
                    n.view = None;
                    exited.push((n.id, status));
                }
            }
        }
        for (id, status) in exited {
            self.say(format!(
                "{id} exited ({status}); see {}",
                self.dir.join(format!("node-{id}.log")).display()
            ));
            self.disrupt(format!("{id} exited"));
        }
    }

    /// Keeps a watching status request at every running node, waits at most `--poll` for
    /// their answers, and prints role changes and elections.
    fn observe(&mut self) {
        self.ask_watches();
        for c in self.read_replies() {
            self.say(c);
        }
        self.check_agreement();
    }

    /// Sends a watching status request to every running node that has none outstanding.
    fn ask_watches(&mut self) {
        let now = Instant::now();
        for n in self
            .nodes
            .values_mut()
            .filter(|n| n.child.is_some() && !n.paused)
        {
            if n.asked
                .is_some_and(|(_, at)| now.duration_since(at) < WATCH_WAIT + WATCH_GRACE)
            {
                continue;
            }
            let watch = n.last_status.as_ref().map(|s| wire::Watch {
                role_changes: s.role_changes,
                wait: WATCH_WAIT,
            });
            // Not connected yet (a node still starting): asked again next round.
            if let Ok(nonce) = n.client.ask(watch) {
                n.asked = Some((nonce, now));
            }
        }
    }

    /// Waits at most `--poll` for the nodes' answers and takes them in; the role changes, as
    /// lines to print.
    fn read_replies(&mut self) -> Vec<String> {
        let mut watched: Vec<&mut Node> = self
            .nodes
            .values_mut()
            .filter(|n| n.child.is_some() && !n.paused && n.asked.is_some())
            .collect();
        let mut items: Vec<_> = watched.iter().map(|n| n.client.poll_item()).collect();
        let ms = self.args.poll.as_millis().clamp(1, i64::MAX as u128) as i64;
        let _ = zmq::poll(&mut items, ms);
        let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        drop(items);
        let mut changes = Vec::new();
        for (n, _) in watched.iter_mut().zip(ready).filter(|(_, r)| *r) {
            while let Ok(Some((nonce, s))) = n.client.try_reply() {
                if nonce.is_some() && nonce == n.asked.map(|(a, _)| a) {
                    n.asked = None;
                }
                let view = View::from(&s);
                if n.view.as_ref().map(View::key) != Some(view.key()) {
                    let from = n
                        .view
                        .as_ref()
                        .map_or("(started)".to_string(), |v| v.role_text.clone());
                    changes.push(format!("{}: {from} -> {}", n.id, view.role_text));
                }
                n.view = Some(view);
                n.last_status = Some(s);
            }
        }
        changes
    }

    /// Agreement: every running, unpaused node names the same coordinator and epoch, and that
    /// coordinator is running, unpaused and in office; a new one is announced.
    fn check_agreement(&mut self) {
        let live: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.child.is_some() && !n.paused)
            .collect();
        if live.is_empty() {
            return;
        }
        let first = live[0].view.as_ref();
        let agreed = first.and_then(|f| Some((f.coordinator?, f.epoch.clone()?)));
        let unanimous = agreed.as_ref().is_some_and(|(c, e)| {
            live.iter().all(|n| {
                n.view
                    .as_ref()
                    .is_some_and(|v| v.coordinator == Some(*c) && v.epoch.as_ref() == Some(e))
            }) && live
                .iter()
                .any(|n| n.id == *c && n.view.as_ref().is_some_and(|v| v.is_coordinator))
        });
        if !unanimous {
            self.disrupt("disagreement".into());
            return;
        }
        let agreed = agreed.expect("unanimous");
        if self.agreed.as_ref() != Some(&agreed) {
            let took = match &self.disrupted {
                Some((t, why)) => format!("{} ms after {why}", t.elapsed().as_millis()),
                None => "at once".into(),
            };
            self.say(format!(
                "==> {} elected (epoch {}): all {} running nodes agree, {took}",
                agreed.0,
                agreed.1,
                live.len()
            ));
            self.agreed = Some(agreed);
        }
        self.disrupted = None;
    }

    /// SIGCONT + SIGTERM to every child, then SIGKILL what is left after a grace period.
    fn stop_all(&mut self) {
        for n in self.nodes.values() {
            if let Some(c) = &n.child {
                unsafe {
                    libc::kill(c.id() as libc::pid_t, libc::SIGCONT);
                    libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for n in self.nodes.values_mut() {
            if let Some(mut c) = n.child.take() {
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        _ => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

enum Input {
    Line(String),
    Eof,
}

fn ports_free(ids: &[u64]) -> Result<(), String> {
    for &id in ids {
        if std::net::TcpListener::bind(("127.0.0.1", id as u16)).is_err() {
            return Err(format!(
                "port {id} on 127.0.0.1 is in use (choose --base-port)"
            ));
        }
    }
    Ok(())
}

/// A judged run (`--chaos`) starts with no step logs: the verdict is about this run alone.
fn refuse_old_step_logs(dir: &Path, ids: &[u64]) -> Result<(), Failure> {
    match ids
        .iter()
        .map(|id| dir.join(format!("node-{id}.steps")))
        .find(|p| p.exists())
    {
        Some(p) => Err(Failure::Usage(format!(
            "--chaos: {} exists (a step log of an earlier run); give an empty --data-dir",
            p.display()
        ))),
        None => Ok(()),
    }
}

fn prepare_dir(dir: &Path) -> Result<(), Failure> {
    fs::create_dir_all(dir)
        .map_err(|e| Failure::Usage(format!("--data-dir {}: {e}", dir.display())))?;
    let probe = dir.join(".cluster.probe");
    File::create(&probe)
        .map_err(|e| Failure::Usage(format!("--data-dir {}: {e}", dir.display())))?;
    let _ = fs::remove_file(probe);
    Ok(())
}

/// `bully-node cluster`.
pub fn main(args: ClusterArgs) -> Result<(), Failure> {
    let plan = Plan::check(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Failure::Runtime(format!("signal handler: {e}")))?;
    }
    let (dir, temporary) = (plan.dir.clone(), plan.temporary);
    let script = plan.script.clone();
    let judged = plan.args.chaos.is_some();
    let ids = plan.ids.clone();
    let mut cluster = Cluster::launch(plan)?;
    if let Some(text) = chaos_intro(&cluster.args, &ids, &script) {
        cluster.say(text);
    }
    cluster.drive(script, &stop);
    cluster.stop_all();
    cluster.say("all nodes stopped");
    let verdict = judged.then(|| judge(&dir, &ids));
    if temporary {
        let _ = fs::remove_dir_all(&dir);
    }
    match verdict {
        None | Some(Ok(0)) => Ok(()),
        Some(Ok(code)) => Err(Failure::Verdict(code)),
        Some(Err(e)) => Err(Failure::Runtime(e)),
    }
}

/// The nemesis's schedule (`--chaos`), as `--script` lines plus a quit at `--duration`.
fn chaos_script(args: &ClusterArgs, ids: &[u64]) -> Result<Vec<(Duration, Action)>, Failure> {
    let Some(seed) = args.chaos else {
        return Ok(Vec::new());
    };
    let min_up = args.min_up.unwrap_or((ids.len() / 2).max(1));
    if min_up >= ids.len() {
        return Err(Failure::Usage(format!(
            "--min-up {min_up} leaves no node to fault among {} (it must be below --nodes)",
            ids.len()
        )));
    }
    let plan = chaos::Plan {
        seed,
        duration: args.duration,
        faults: args.faults.clone(),
        min_up,
    };
    let mut script: Vec<(Duration, Action)> = chaos::draw(&plan, ids)
        .into_iter()
        .map(|e| {
            let action = match e.what {
                chaos::Injected::Kill => Action::Kill(e.node),
                chaos::Injected::Restart => Action::Restart(e.node),
                chaos::Injected::Pause => Action::Pause(e.node),
                chaos::Injected::Resume => Action::Resume(e.node),
            };
            (e.at, action)
        })
        .collect();
    script.push((args.duration, Action::Quit));
    Ok(script)
}

/// What `--chaos` says before it starts: the seed, the counts, and the schedule as `--script`
/// lines (to repeat the run without the nemesis).
fn chaos_intro(args: &ClusterArgs, ids: &[u64], script: &[(Duration, Action)]) -> Option<String> {
    let seed = args.chaos?;
    let count = |f: fn(&Action) -> bool| script.iter().filter(|(_, a)| f(a)).count();
    let kills = count(|a| matches!(a, Action::Kill(_)));
    let restarts = count(|a| matches!(a, Action::Restart(_)));
    let pauses = count(|a| matches!(a, Action::Pause(_)));
    let min_up = args.min_up.unwrap_or((ids.len() / 2).max(1));
    let mut text = format!(
        "chaos seed {seed}: {} faults ({kills} kills, {restarts} restarts, {pauses} pauses) over {}, at least {min_up} of {} nodes up; schedule (--script lines):",
        kills + restarts + pauses,
        humantime::format_duration(args.duration),
        ids.len()
    );
    for (at, action) in script {
        text.push_str(&format!("\n  {}", script_line(*at, action)));
    }
    Some(text)
}

/// One `--script` line for `action` at `at`.
fn script_line(at: Duration, action: &Action) -> String {
    let what = match action {
        Action::Kill(id) => format!("kill {id}"),
        Action::Restart(id) => format!("restart {id}"),
        Action::Pause(id) => format!("pause {id}"),
        Action::Resume(id) => format!("resume {id}"),
        Action::Status => "status".into(),
        Action::Quit | Action::Help => "quit".into(),
    };
    format!("at {}.{:03}s {what}", at.as_secs(), at.subsec_millis())
}

/// Judges the nodes' step logs in `dir` against the model and prints the verdict; its exit
/// code (0 conforms, 1 violation, 3 conforms only after leaving an assumption).
fn judge(dir: &Path, ids: &[u64]) -> Result<u8, String> {
    let files: Vec<PathBuf> = ids
        .iter()
        .map(|id| dir.join(format!("node-{id}.steps")))
        .filter(|p| p.is_file())
        .collect();
    let verdict = conformance::validate_files(&files, &conformance::Options::default())
        .map_err(|e| format!("conformance: {e}"))?;
    println!("{verdict}");
    Ok(verdict.outcome().exit_code())
}

/// A launch, checked before anything starts: the nodes' IDs (= ports), the script, the
/// directory, the key in full.
struct Plan {
    args: ClusterArgs,
    ids: Vec<u64>,
    script: Vec<(Duration, Action)>,
    dir: PathBuf,
    /// Whether `dir` is this launcher's own (removed at the end).
    temporary: bool,
}

impl Plan {
    fn check(args: ClusterArgs) -> Result<Plan, Failure> {
        let last = u64::from(args.base_port) + u64::from(args.nodes) - 1;
        if args.base_port == 0 || last > 65535 {
            return Err(Failure::Usage(format!(
                "ports {}..={last} are not all valid TCP ports",
                args.base_port
            )));
        }
        let ids: Vec<u64> = (u64::from(args.base_port)..=last).collect();
        let script = match &args.script {
            None if args.chaos.is_some() => chaos_script(&args, &ids)?,
            Some(p) => {
                let text = fs::read_to_string(p)
                    .map_err(|e| Failure::Usage(format!("--script {}: {e}", p.display())))?;
                parse_script(&text)
                    .map_err(|e| Failure::Usage(format!("--script {}: {e}", p.display())))?
            }
            None => Vec::new(),
        };
        for (_, a) in &script {
            if let Action::Kill(id) | Action::Restart(id) | Action::Pause(id) | Action::Resume(id) =
                a
            {
                if !ids.contains(id) {
                    return Err(Failure::Usage(format!(
                        "--script: no node {id} (nodes are {}..={last})",
                        args.base_port
                    )));
                }
            }
        }
        ports_free(&ids).map_err(Failure::Usage)?;
        let mut args = args;
        if let Some(key) = &args.cluster_key {
            crate::auth::ClusterKey::load(key).map_err(|e| Failure::Usage(e.to_string()))?;
            // The children run in the launcher's directory, but say where the key is in full.
            let abs = fs::canonicalize(key)
                .map_err(|e| Failure::Usage(format!("--cluster-key {}: {e}", key.display())))?;
            args.cluster_key = Some(abs);
        }
        let (dir, temporary) = match &args.data_dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!("bully-cluster-{}", std::process::id())),
                true,
            ),
        };
        prepare_dir(&dir)?;
        if args.chaos.is_some() {
            refuse_old_step_logs(&dir, &ids)?;
            args.step_logs = true;
        }
        Ok(Plan {
            args,
            ids,
            script,
            dir,
            temporary,
        })
    }
}

impl Cluster {
    /// Starts every node of `plan` and says what the cluster is.
    fn launch(plan: Plan) -> Result<Cluster, Failure> {
        let exe = std::env::current_exe()
            .map_err(|e| Failure::Runtime(format!("cannot find this executable: {e}")))?;
        let ctx = zmq::Context::new();
        let mut nodes = BTreeMap::new();
        for &id in &plan.ids {
            let endpoint = format!("tcp://127.0.0.1:{id}");
            let client = StatusClient::connect(&ctx, &endpoint)
                .map_err(|e| Failure::Runtime(e.to_string()))?;
            nodes.insert(
                id,
                Node {
                    id,
                    child: None,
                    started: false,
                    paused: false,
                    client,
                    asked: None,
                    view: None,
                    last_status: None,
                },
            );
        }
        let ids = plan.ids;
        let (h, t) = (plan.args.heartbeat, plan.args.timeout);
        let mut cluster = Cluster {
            exe,
            dir: plan.dir.clone(),
            args: plan.args,
            nodes,
            start: Instant::now(),
            agreed: None,
            disrupted: Some((Instant::now(), "start".into())),
        };
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        cluster.say(format!(
            "cluster of {} nodes ({}..={}), heartbeat {}, timeout {}; state and logs in {}",
            ids.len(),
            ids[0],
            ids[ids.len() - 1],
            fmt(h),
            fmt(t),
            plan.dir.display()
        ));
        let timing = bully_model::Durations {
            heartbeat: h,
            timeout: t,
        };
        cluster.say(format!(
            "failover bound after kill -9 of the coordinator: heartbeat + 2 x timeout + 4 one-way delays = {} + delays",
            fmt(timing.failover_bound(Duration::ZERO))
        ));
        if cluster.args.cluster_key.is_none() {
            cluster.say(
                "UNAUTHENTICATED cluster: no --cluster-key, anyone who can reach the ports can take part",
            );
        }
        cluster.say("commands: kill ID | restart ID | pause ID | resume ID | status | quit");
        for &id in &ids {
            if let Err(e) = cluster.spawn(id) {
                cluster.stop_all();
                return Err(Failure::Runtime(e));
            }
        }
        Ok(cluster)
    }

    /// Runs the script and the commands typed on stdin, watching the nodes, until `quit`,
    /// the end of both, or a signal (`stop`).
    fn drive(&mut self, script: Vec<(Duration, Action)>, stop: &AtomicBool) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) => {
                        if tx.send(Input::Line(l)).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(Input::Eof);
        });
        let mut script = script.into_iter().peekable();
        let mut stdin_open = true;
        'main: loop {
            if stop.load(Ordering::SeqCst) {
                self.say("interrupted: stopping every node");
                break;
            }
            while let Some((at, _)) = script.peek() {
                if self.start.elapsed() < *at {
                    break;
                }
                let (_, action) = script.next().expect("peeked");
                if !self.act(action) {
                    break 'main;
                }
            }
            self.reap();
            self.observe();
            if !stdin_open && script.peek().is_none() {
                self.say("end of input: stopping every node");
                break;
            }
            // `observe` waited for the nodes already.
            match rx.recv_timeout(Duration::ZERO) {
                Ok(Input::Line(l)) => match parse_action(&l) {
                    Ok(Some(a)) => {
                        if !self.act(a) {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => self.say(e),
                },
                Ok(Input::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => stdin_open = false,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_parses() {
        let s = parse_script("# demo\nat 3s kill 5003\n\nat 1s pause 5002 # comment\nat 5s quit\n")
            .unwrap();
        assert_eq!(
            s,
            vec![
                (Duration::from_secs(1), Action::Pause(5002)),
                (Duration::from_secs(3), Action::Kill(5003)),
                (Duration::from_secs(5), Action::Quit),
            ]
        );
        assert!(parse_script("kill 5003").is_err());
        assert!(parse_script("at soon kill 5003").is_err());
        assert!(parse_script("at 1s explode 5003").is_err());
        assert!(parse_script("at 1s kill").is_err());
    }
}
