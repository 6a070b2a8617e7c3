//! Test harness: real `bully-node` processes on 127.0.0.1, free ports from the OS, every child
//! killed in `Drop` (also when a test panics), waits bounded in time and driven by `status`.

#![allow(dead_code)]

// What the tests read from step logs (not every test file uses every type).
#[allow(unused_imports)]
pub use bully_model::{Cmd, Event, Id, LoggedStep, Msg, Storage};
pub use bully_node::status::Status;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bully-node");

/// `n` distinct free TCP ports on 127.0.0.1, sorted (IDs = ports, so the last is the highest).
pub fn free_ports(n: usize) -> Vec<u64> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind port 0"))
        .collect();
    let mut ports: Vec<u64> = listeners
        .iter()
        .map(|l| u64::from(l.local_addr().unwrap().port()))
        .collect();
    ports.sort_unstable();
    ports
}

/// `n` consecutive free ports (the cluster launcher uses base-port..base-port+n).
pub fn consecutive_free_ports(n: u16) -> u16 {
    for _ in 0..100 {
        let base = free_ports(1)[0] as u16;
        if base > 65000 {
            continue;
        }
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

pub fn endpoint(id: u64) -> String {
    format!("tcp://127.0.0.1:{id}")
}

/// The epoch as `(round, leader)`, ordered like the model's `Epoch`.
pub type Epoch = (u64, u64);

/// An epoch in JSON (`{"round":R,"leader":L}`), as in a storage file.
pub fn epoch_of(v: &Value) -> Option<Epoch> {
    Some((v.get("round")?.as_u64()?, v.get("leader")?.as_u64()?))
}

/// The model's epoch in this harness's form.
pub fn epoch(e: bully_model::Epoch) -> Epoch {
    (u64::from(e.round), id_u64(e.leader))
}

/// A model ID in this harness's form (IDs are ports).
pub fn id_u64(id: Id) -> u64 {
    usize::from(id) as u64
}

/// The members a status names, in this harness's form (None before the first step).
pub fn member_ids(s: &Status) -> Option<Vec<u64>> {
    s.members.as_ref().map(|m| m.iter().map(id_u64).collect())
}

/// Spawns `bully-node` with `args`; stdout and stderr go to `log`. The child dies with the
/// thread that spawned it (`PR_SET_PDEATHSIG`), a second line of defence after `Drop`.
pub fn spawn(args: &[String], log: &PathBuf) -> Child {
    spawn_env(args, &[], log)
}

/// [`spawn`] with extra environment variables (e.g. `FAILPOINTS`).
pub fn spawn_env(args: &[String], env: &[(&str, &str)], log: &PathBuf) -> Child {
    let out = fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().expect("spawn bully-node")
}

pub struct Net {
    pub name: String,
    pub dir: PathBuf,
    pub ids: Vec<u64>,
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub procs: BTreeMap<u64, Child>,
}

impl Net {
    /// `n` node IDs (free ports), a fresh directory; nothing started yet.
    pub fn new(name: &str, n: usize, heartbeat_ms: u64, timeout_ms: u64) -> Net {
        let dir =
            std::env::temp_dir().join(format!("bully-node-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Net {
            name: name.into(),
            dir,
            ids: free_ports(n),
            heartbeat: Duration::from_millis(heartbeat_ms),
            timeout: Duration::from_millis(timeout_ms),
            procs: BTreeMap::new(),
        }
    }

    pub fn log(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    pub fn steps(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.steps"))
    }

    pub fn timing_args(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        vec![
            "--heartbeat".into(),
            ms(self.heartbeat),
            "--timeout".into(),
            ms(self.timeout),
        ]
    }

    /// `run` with full membership (every ID of the net), durable state and a step log.
    pub fn full_args(&self, id: u64) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            endpoint(id),
            "--data-dir".into(),
            self.dir.display().to_string(),
            "--step-log".into(),
            self.steps(id).display().to_string(),
        ];
        for &p in self.ids.iter().filter(|&&p| p != id) {
            a.push("--peer".into());
            a.push(format!("{p}={}", endpoint(p)));
        }
        a.extend(self.timing_args());
        a
    }

    pub fn start_with(&mut self, id: u64, args: Vec<String>) {
        let child = spawn(&args, &self.log(id));
        assert!(self.procs.insert(id, child).is_none(), "{id} already runs");
    }

    pub fn start_with_env(&mut self, id: u64, args: Vec<String>, env: &[(&str, &str)]) {
        let child = spawn_env(&args, env, &self.log(id));
        assert!(self.procs.insert(id, child).is_none(), "{id} already runs");
    }

    pub fn start_full(&mut self, id: u64) {
        let args = self.full_args(id);
        self.start_with(id, args);
    }

    pub fn start_all_full(&mut self) {
        for id in self.ids.clone() {
            self.start_full(id);
        }
    }

    pub fn kill9(&mut self, id: u64) {
        let mut c = self.procs.remove(&id).expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    pub fn signal(&self, id: u64, sig: libc::c_int) {
        let c = &self.procs[&id];
        assert_eq!(unsafe { libc::kill(c.id() as libc::pid_t, sig) }, 0);
    }

    /// SIGTERM and the exit status (bounded wait).
    pub fn terminate(&mut self, id: u64, limit: Duration) -> ExitStatus {
        self.signal(id, libc::SIGTERM);
        let mut c = self.procs.remove(&id).expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("{id} did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The status reply of `id` (None if it did not answer in time).
    pub fn status(&self, id: u64) -> Option<Status> {
        bully_node::status::query(&endpoint(id), Duration::from_millis(300)).ok()
    }

    /// Statuses of `ids` (None where a node did not answer).
    pub fn statuses(&self, ids: &[u64]) -> BTreeMap<u64, Option<Status>> {
        ids.iter().map(|&id| (id, self.status(id))).collect()
    }

    pub fn running(&self) -> Vec<u64> {
        self.procs.keys().copied().collect()
    }

    /// If every node of `ids` names the same coordinator at the same epoch, that coordinator is
    /// among `ids` and in office, and no other node of `ids` claims office: that agreement.
    pub fn agreement(&self, ids: &[u64]) -> Option<(u64, Epoch)> {
        let st = self.statuses(ids);
        agreement_of(&st)
    }

    /// Polls `cond` every 10 ms until it holds; panics after `limit` with `what` and a dump of
    /// every running node's status. Returns the time it took.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut() -> Option<T>,
    ) -> (T, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(v) = cond() {
                return (v, t0.elapsed());
            }
            if t0.elapsed() > limit {
                let dump: Vec<String> = self
                    .running()
                    .into_iter()
                    .map(|id| {
                        let s = self.status(id);
                        format!(
                            "{id}: {}",
                            s.map(|s| format!(
                                "{} coordinator={} epoch={} members={:?} dropped={:?}",
                                s.role_text.as_deref().unwrap_or("-"),
                                s.coordinator
                                    .map_or_else(|| "-".into(), |c| id_u64(c).to_string()),
                                s.epoch_text.as_deref().unwrap_or("-"),
                                member_ids(&s),
                                s.dropped
                            ))
                            .unwrap_or_else(|| "no answer".into())
                        )
                    })
                    .collect();
                panic!(
                    "[{}] timed out after {limit:?} waiting for {what}\n{}",
                    self.name,
                    dump.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `ids` agree (see [`Net::agreement`]) on a coordinator satisfying `ok`.
    pub fn wait_agreement(
        &self,
        what: &str,
        ids: &[u64],
        limit: Duration,
        ok: impl Fn(u64, Epoch) -> bool,
    ) -> ((u64, Epoch), Duration) {
        self.wait_for(what, limit, || {
            self.agreement(ids).filter(|&(c, e)| ok(c, e))
        })
    }

    /// Two nodes with full membership, started and settled within `limit` with the higher
    /// one in office: `(net, low, top)`.
    pub fn settled_pair(
        name: &str,
        heartbeat_ms: u64,
        timeout_ms: u64,
        limit: Duration,
    ) -> (Net, u64, u64) {
        let mut net = Net::new(name, 2, heartbeat_ms, timeout_ms);
        net.start_all_full();
        let ids = net.ids.clone();
        let (low, top) = (ids[0], ids[1]);
        net.wait_agreement("the initial election", &ids, limit, |c, _| c == top);
        (net, low, top)
    }

    /// Checks that every logged step of `id` that saves and sends lists its saves before its
    /// first send (persist before send); returns how many such steps there were.
    pub fn saves_before_sends(&self, id: u64) -> usize {
        let mut both = 0;
        for step in self.step_lines(id) {
            let cmds = &step.commands;
            let (Some(last_save), Some(first_send)) = (
                cmds.iter().rposition(|c| matches!(c, Cmd::Save { .. })),
                cmds.iter().position(|c| matches!(c, Cmd::Send { .. })),
            ) else {
                continue;
            };
            both += 1;
            assert!(
                last_save < first_send,
                "{id} seq {}: a send before a save: {cmds:?}",
                step.seq
            );
        }
        both
    }

    /// The step log of `id`, parsed.
    pub fn step_lines(&self, id: u64) -> Vec<LoggedStep> {
        let text = fs::read_to_string(self.steps(id)).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each step line is a logged step"))
            .collect()
    }
}

pub fn agreement_of(st: &BTreeMap<u64, Option<Status>>) -> Option<(u64, Epoch)> {
    let mut agreed: Option<(u64, Epoch)> = None;
    for s in st.values() {
        let s = s.as_ref()?;
        let c = id_u64(s.coordinator?);
        let e = epoch(s.epoch?);
        match agreed {
            None => agreed = Some((c, e)),
            Some(a) if a == (c, e) => {}
            Some(_) => return None,
        }
    }
    let (c, _) = agreed?;
    for (id, s) in st {
        let claims = s.as_ref()?.is_coordinator;
        if claims != (*id == c) {
            return None;
        }
    }
    if !st.contains_key(&c) {
        return None;
    }
    agreed
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.procs) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            // Show what the nodes said; keep the directory for a closer look.
            for id in &self.ids {
                if let Ok(text) = fs::read_to_string(self.log(*id)) {
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(30)..];
                    eprintln!("---- [{}] node {id} log (tail) ----", self.name);
                    for l in tail {
                        eprintln!("{l}");
                    }
                }
            }
            eprintln!("[{}] files kept in {}", self.name, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether Python peers can run (python3 with pyzmq); prints why not.
pub fn python_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import zmq"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped {test}: python3 with pyzmq is not available (pip install pyzmq)");
    }
    ok
}
