//! The exercise wire (`run --wire exercise`): Rust nodes in clusters of Python exercise nodes
//! (`tests/python/bully_peer.py`, written from the protocol description), an all-Rust cluster
//! on the same wire, and hostile frames. Every child (Rust and Python) is killed in `Drop`, also
//! when a test fails, and dies with the test thread (`PR_SET_PDEATHSIG`). Tests that need
//! Python skip, saying why, where `python3` with pyzmq is missing.

mod common;

use common::{epoch, free_ports, id_u64, member_ids, python_available, spawn, Status};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Heartbeat period and reply timeout of every node (Rust and Python).
const H_MS: u64 = 150;
const T_MS: u64 = 500;
/// Generous limit for a cluster to settle: a shared 2-core machine has been seen to stall every
/// process here for 40 s. Passing runs take well under a second per step.
const SETTLE: Duration = Duration::from_secs(60);

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/bully_peer.py");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    Rust,
    Python,
}

/// A cluster of Rust and Python nodes on the exercise wire, ID = port on 127.0.0.1.
struct Mixed {
    name: String,
    dir: PathBuf,
    lang: BTreeMap<u64, Lang>,
    procs: BTreeMap<u64, Child>,
}

impl Mixed {
    fn new(name: &str) -> Mixed {
        let dir =
            std::env::temp_dir().join(format!("bully-exercise-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Mixed {
            name: name.into(),
            dir,
            lang: BTreeMap::new(),
            procs: BTreeMap::new(),
        }
    }

    fn log(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    fn steps(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.steps"))
    }

    /// `bully-node run --wire exercise ID [CONTACT]` with durable state.
    fn rust(&mut self, id: u64, contact: Option<u64>) {
        self.rust_timed(id, contact, H_MS, T_MS);
    }

    /// The same with heartbeat `h_ms` and timeout `t_ms`.
    fn rust_timed(&mut self, id: u64, contact: Option<u64>, h_ms: u64, t_ms: u64) {
        let mut args: Vec<String> = vec!["run".into(), "--wire".into(), "exercise".into()];
        args.push(id.to_string());
        args.extend(contact.map(|c| c.to_string()));
        for a in [
            "--step-log",
            &self.steps(id).display().to_string(),
            "--data-dir",
            &self.dir.display().to_string(),
            "--heartbeat",
            &format!("{h_ms}ms"),
            "--timeout",
            &format!("{t_ms}ms"),
        ] {
            args.push(a.to_string());
        }
        let child = spawn(&args, &self.log(id));
        self.lang.insert(id, Lang::Rust);
        assert!(self.procs.insert(id, child).is_none(), "{id} already runs");
    }

    /// `python3 bully_peer.py ID [CONTACT]`; its stdout (COORDINATOR lines) goes to its log.
    fn python(&mut self, id: u64, contact: Option<u64>) {
        let out = fs::File::options()
            .create(true)
            .append(true)
            .open(self.log(id))
            .unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg("-u").arg(PEER).arg(id.to_string());
        if let Some(c) = contact {
            cmd.arg(c.to_string());
        }
        cmd.args([
            "--heartbeat",
            &format!("{}", H_MS as f64 / 1000.0),
            "--timeout",
            &format!("{}", T_MS as f64 / 1000.0),
        ]);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn python3");
        self.lang.insert(id, Lang::Python);
        assert!(self.procs.insert(id, child).is_none(), "{id} already runs");
    }

    fn kill9(&mut self, id: u64) {
        let mut c = self.procs.remove(&id).expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    fn running(&self) -> Vec<u64> {
        self.procs.keys().copied().collect()
    }

    fn status(&self, id: u64) -> Option<Status> {
        bully_node::status::query(&common::endpoint(id), Duration::from_millis(400)).ok()
    }

    /// Whom `id` names as coordinator: a Rust node's `status`, a Python node's last
    /// `COORDINATOR` line.
    fn view(&self, id: u64) -> Option<u64> {
        match self.lang[&id] {
            Lang::Rust => self.status(id)?.coordinator.map(id_u64),
            Lang::Python => last_line(&self.log(id), "COORDINATOR ")?
                .trim()
                .parse()
                .ok(),
        }
    }

    /// Polls until every running node names `expected` (so no other node names itself), and
    /// the Rust nodes' `is_coordinator` agrees; panics after `limit` with every view.
    fn wait_all_name(&self, expected: u64, limit: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            let ids = self.running();
            let views: Vec<(u64, Option<u64>)> = ids.iter().map(|&i| (i, self.view(i))).collect();
            if views.iter().all(|(_, v)| *v == Some(expected)) && self.rust_claims_ok(expected) {
                return t0.elapsed();
            }
            if t0.elapsed() > limit {
                panic!(
                    "[{}] not every node named {expected} within {limit:?}: {views:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Python nodes saw only the exercise's message types (their `UNKNOWN` lines).
    fn assert_only_exercise_types(&self) {
        for (id, lang) in &self.lang {
            if *lang == Lang::Python {
                let text = fs::read_to_string(self.log(*id)).unwrap_or_default();
                let odd: Vec<&str> = text.lines().filter(|l| l.starts_with("UNKNOWN")).collect();
                assert!(odd.is_empty(), "{id} saw non-exercise frames: {odd:?}");
            }
        }
    }

    fn rust_claims_ok(&self, expected: u64) -> bool {
        self.running()
            .into_iter()
            .filter(|i| self.lang[i] == Lang::Rust)
            .all(|i| {
                self.status(i)
                    .is_some_and(|s| s.is_coordinator == (i == expected))
            })
    }
}

fn last_line(path: &PathBuf, prefix: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
}

impl Drop for Mixed {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.procs) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for id in self.lang.keys() {
                if let Ok(text) = fs::read_to_string(self.log(*id)) {
                    let lines: Vec<&str> = text.lines().collect();
                    eprintln!("---- [{}] node {id} log (tail) ----", self.name);
                    for l in &lines[lines.len().saturating_sub(25)..] {
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

#[test]
fn mixed_cluster_highest_python_kill_and_restart() {
    if !python_available("mixed_cluster_highest_python_kill_and_restart") {
        return;
    }
    let p = free_ports(4);
    let (p1, r2, r3, p4) = (p[0], p[1], p[2], p[3]);
    let mut c = Mixed::new("highest-python");
    c.python(p1, None);
    std::thread::sleep(Duration::from_millis(300));
    c.rust(r2, Some(p1));
    c.rust(r3, Some(p1));
    c.wait_all_name(r3, SETTLE);
    c.python(p4, Some(p1));
    let took = c.wait_all_name(p4, SETTLE);
    eprintln!("highest-python: all name {p4} (Python) after {took:?}");
    for r in [r2, r3] {
        let s = c.status(r).unwrap();
        let members = member_ids(&s).unwrap();
        assert_eq!(members, vec![p1, r2, r3, p4], "{r} members");
    }

    // Kill the Python coordinator: the highest survivor (Rust) takes over.
    c.kill9(p4);
    let took = c.wait_all_name(r3, SETTLE);
    eprintln!("highest-python: after kill -9 {p4}, all name {r3} after {took:?}");

    // Restart it (once the survivors' announcements to the dead port are over): it takes
    // over again.
    std::thread::sleep(Duration::from_millis(2 * T_MS));
    c.python(p4, Some(p1));
    let took = c.wait_all_name(p4, SETTLE);
    eprintln!("highest-python: {p4} restarted, all name it after {took:?}");
    c.assert_only_exercise_types();
}

#[test]
fn mixed_cluster_highest_rust_kill_and_restart() {
    if !python_available("mixed_cluster_highest_rust_kill_and_restart") {
        return;
    }
    let p = free_ports(4);
    let (p1, r2, p3, r4) = (p[0], p[1], p[2], p[3]);
    let mut c = Mixed::new("highest-rust");
    c.python(p1, None);
    std::thread::sleep(Duration::from_millis(300));
    c.rust(r2, Some(p1));
    c.python(p3, Some(p1));
    c.wait_all_name(p3, SETTLE);
    c.rust(r4, Some(p1));
    let took = c.wait_all_name(r4, SETTLE);
    eprintln!("highest-rust: all name {r4} (Rust) after {took:?}");
    // The Python nodes learned every process from the Rust coordinator's acks.
    for py in [p1, p3] {
        let procs = last_line(&c.log(py), "PROCESSES ").unwrap();
        assert_eq!(procs, format!("{p1} {r2} {p3} {r4}"), "{py} processes");
    }

    // Kill the Rust coordinator: the highest survivor (Python) takes over.
    c.kill9(r4);
    let took = c.wait_all_name(p3, SETTLE);
    eprintln!("highest-rust: after kill -9 {r4}, all name {p3} after {took:?}");

    // Restart it with its saved state: it elects and takes over again.
    std::thread::sleep(Duration::from_millis(2 * T_MS));
    c.rust(r4, Some(p1));
    let took = c.wait_all_name(r4, SETTLE);
    eprintln!("highest-rust: {r4} restarted, all name it after {took:?}");
    c.assert_only_exercise_types();
}

#[test]
fn rust_node_joins_a_running_python_cluster_through_its_coordinator() {
    if !python_available("rust_node_joins_a_running_python_cluster_through_its_coordinator") {
        return;
    }
    let p = free_ports(4);
    let (p1, r2, p3, p4) = (p[0], p[1], p[2], p[3]);
    let mut c = Mixed::new("join-python");
    c.python(p1, None);
    std::thread::sleep(Duration::from_millis(300));
    // One joiner at a time: the Python peers run the textbook protocol, without epochs, so of
    // two concurrent elections the later-arriving `election_won` wins at each receiver, and a
    // lower node may be left following the lower winner (p1 naming p3).
    c.python(p3, Some(p1));
    c.wait_all_name(p3, SETTLE);
    c.python(p4, Some(p1));
    c.wait_all_name(p4, SETTLE);

    // The exercise's command line: `<port> <coordinator_port>`.
    c.rust(r2, Some(p4));
    let took = c.wait_all_name(p4, SETTLE);
    eprintln!("join-python: {r2} follows {p4} after {took:?}");
    let s = c.status(r2).unwrap();
    let members = member_ids(&s).unwrap();
    assert_eq!(members, vec![p1, r2, p3, p4], "{s:?}");
    assert_eq!(s.role.as_deref(), Some("follower"));
    // Heartbeats keep flowing and nothing was refused.
    std::thread::sleep(Duration::from_millis(4 * H_MS));
    let s = c.status(r2).unwrap();
    assert!(
        s.messages.received.get("heartbeat_ack").copied().unwrap() >= 2,
        "{s:?}"
    );
    assert_eq!(s.coordinator.map(id_u64), Some(p4));
    let dropped = &s.dropped;
    assert!(
        dropped
            .keys()
            .all(|k| k == "no_exercise_equivalent" || k == "expired"),
        "{dropped:?}"
    );
    c.assert_only_exercise_types();
}

#[test]
fn a_request_sent_before_its_receiver_started_is_dropped_by_the_receiver() {
    let ids = free_ports(2);
    let (low, top) = (ids[0], ids[1]);
    let mut c = Mixed::new("before-start");
    // A long timeout: the joiner's first request waits half of it for the contact to come up,
    // and the contact starts well within that wait, after the request was sent.
    c.rust_timed(low, Some(top), 200, 4000);
    std::thread::sleep(Duration::from_millis(500));
    c.rust_timed(top, None, 200, 4000);
    c.wait_all_name(top, SETTLE);
    let s = c.status(top).unwrap();
    assert!(
        s.dropped.get("before_start").copied().unwrap_or(0) >= 1,
        "{:?}",
        s.dropped
    );
}

#[test]
fn all_rust_cluster_on_the_exercise_wire_keeps_epochs_and_the_halt_phase() {
    let ids = free_ports(4);
    let top = ids[3];
    let mut c = Mixed::new("all-rust");
    c.rust(ids[0], None);
    std::thread::sleep(Duration::from_millis(300));
    for &id in &ids[1..] {
        c.rust(id, Some(ids[0]));
    }
    c.wait_all_name(top, SETTLE);
    let epoch = |c: &Mixed, id: u64| c.status(id).unwrap().epoch.map(common::epoch);
    let e1 = epoch(&c, top).unwrap();
    for &id in &ids {
        assert_eq!(epoch(&c, id), Some(e1), "{id} names the same epoch");
    }
    // Between Rust nodes nothing is lost in translation: halts were carried and acknowledged.
    let s = c.status(top).unwrap();
    assert!(
        s.messages.received.get("halt_ack").copied().unwrap_or(0) >= 1,
        "{s:?}"
    );
    assert!(!s.dropped.contains_key("no_exercise_equivalent"), "{s:?}");

    c.kill9(top);
    let next = ids[2];
    c.wait_all_name(next, SETTLE);
    let e2 = epoch(&c, next).unwrap();
    assert!(e2 > e1, "{e2:?} > {e1:?}");

    c.rust(top, Some(ids[0]));
    let took = c.wait_all_name(top, SETTLE);
    let e3 = epoch(&c, top).unwrap();
    assert!(e3 > e2, "{e3:?} > {e2:?}");
    for &id in &ids {
        assert_eq!(epoch(&c, id), Some(e3), "{id} names the same epoch");
    }
    eprintln!("all-rust: {top} back in office at {e3:?} after {took:?}");

    // The step log works on this wire too: each step's `before` is the previous `after`
    // (one chain per incarnation: the restart appends a new `start`).
    let text = fs::read_to_string(c.steps(top)).unwrap();
    let steps: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        steps
            .iter()
            .filter(|s| s["event"]["kind"] == "start")
            .count(),
        2
    );
    for w in steps.windows(2) {
        if w[1]["event"]["kind"] != "start" {
            assert_eq!(w[1]["before"], w[0]["after"], "step {}", w[1]["seq"]);
        }
    }
}

#[test]
fn all_rust_paused_coordinator_resumes_into_one_coordinator() {
    let ids = free_ports(3);
    let top = ids[2];
    let mut c = Mixed::new("pause");
    c.rust(ids[0], None);
    std::thread::sleep(Duration::from_millis(300));
    for &id in &ids[1..] {
        c.rust(id, Some(ids[0]));
    }
    c.wait_all_name(top, SETTLE);
    let e1 = c.status(top).unwrap().epoch.map(epoch).unwrap();
    // Let the followers connect and settle into their heartbeat rhythm (a process paused
    // before anyone connected to it is indistinguishable from a crashed one, on either wire).
    std::thread::sleep(Duration::from_millis(3 * H_MS));

    // Paused past the timeout, the others elect the next highest; resumed, the old coordinator
    // must hear of it (its connection survived the pause: nothing was closed under it) and
    // take over at a higher epoch, not stay a second coordinator nobody follows.
    let pid = c.procs[&top].id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let others = &ids[..2];
    let t0 = Instant::now();
    loop {
        let v: Vec<Option<u64>> = others.iter().map(|&i| c.view(i)).collect();
        if v.iter().all(|x| *x == Some(ids[1])) {
            break;
        }
        if t0.elapsed() > SETTLE {
            unsafe { libc::kill(pid, libc::SIGCONT) };
            panic!(
                "the others did not elect {} while {top} was paused: {v:?}",
                ids[1]
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    c.wait_all_name(top, SETTLE);
    let e2 = c.status(top).unwrap().epoch.map(epoch).unwrap();
    assert!(e2 > e1, "{e2:?} > {e1:?}");
    // And it stays single.
    std::thread::sleep(Duration::from_millis(3 * T_MS));
    c.wait_all_name(top, Duration::from_millis(1));
}

fn run_cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(common::BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exercise_wire_arguments_are_checked() {
    let port = free_ports(1)[0].to_string();
    for (args, needle) in [
        (
            vec![
                "run",
                "--wire",
                "exercise",
                "--id",
                "5",
                "--listen",
                "tcp://127.0.0.1:5",
            ],
            "PORT",
        ),
        (
            vec![
                "run",
                "--wire",
                "exercise",
                &port,
                "--peer",
                "2=tcp://127.0.0.1:2",
            ],
            "--peer",
        ),
        (vec!["run", &port, "--host", "127.0.0.1"], "--host"),
        (
            vec!["run", "--wire", "exercise", &port, "--host", "bad host"],
            "--host",
        ),
        (
            vec!["run", "--wire", "carrier-pigeon", &port],
            "carrier-pigeon",
        ),
        (
            vec![
                "run",
                "--wire",
                "exercise",
                &port,
                "--cluster-key",
                "/nonexistent",
            ],
            "--cluster-key",
        ),
    ] {
        let (code, err) = run_cli(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A port that is taken: a usage error too, one line.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = taken.local_addr().unwrap().port().to_string();
    let (code, err) = run_cli(&["run", "--wire", "exercise", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot bind"), "{err}");
}

/// A REQ socket to `id`, as the exercise's peers use (LINGER 0, receive timeout).
fn req(ctx: &zmq::Context, id: u64) -> zmq::Socket {
    let s = ctx.socket(zmq::REQ).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(3000).unwrap();
    s.connect(&common::endpoint(id)).unwrap();
    s
}

/// Protocol-2 pickle of `os.system(cmd)` (GLOBAL + REDUCE), as `pickle.dumps` writes for an
/// object whose `__reduce__` returns `(os.system, (cmd,))`.
fn evil_global(cmd: &str) -> Vec<u8> {
    let mut b = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    b.extend((cmd.len() as u32).to_le_bytes());
    b.extend(cmd.as_bytes());
    b.extend(b"q\x01\x85q\x02Rq\x03.");
    b
}

/// Protocol-4 form of the same (STACK_GLOBAL + REDUCE).
fn evil_stack_global(cmd: &str) -> Vec<u8> {
    let mut b = b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94X".to_vec();
    b.extend((cmd.len() as u32).to_le_bytes());
    b.extend(cmd.as_bytes());
    b.extend(b"\x94\x85\x94R\x94.");
    b
}

/// A pickled exercise dict (protocol 4), built by hand: `{'type': kind, key: value}`.
fn dict(kind: &str, key: &str, value: u16) -> Vec<u8> {
    let mut b = b"\x80\x04}(".to_vec();
    for s in ["type", kind, key] {
        b.push(0x8c);
        b.push(s.len() as u8);
        b.extend(s.as_bytes());
    }
    b.push(b'M');
    b.extend(value.to_le_bytes());
    b.extend(b"u.");
    b
}

#[test]
fn hostile_and_malformed_frames_are_refused_counted_and_answered() {
    let ids = free_ports(1);
    let id = ids[0];
    let mut c = Mixed::new("hostile");
    let mark = c.dir.join("pwned");
    let cmd = format!("touch {}", mark.display());
    c.rust(id, None);
    c.wait_all_name(id, SETTLE);

    let ctx = zmq::Context::new();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("code", vec![evil_global(&cmd)]),
        ("code", vec![evil_stack_global(&cmd)]),
        (
            "unsupported_protocol",
            vec![b"cos\nsystem\n(S'true'\ntR.".to_vec()],
        ),
        ("unsupported_protocol", vec![b"hello".to_vec()]),
        ("malformed", vec![b"\x80\x04}(\x8c\x04type".to_vec()]),
        ("unknown_type", vec![dict("reboot", "origin", 1)]),
        ("bad_field", vec![dict("election", "winner", 1)]),
        ("unexpected_type", vec![dict("election_ok", "origin", 1)]),
        ("shared_reference", vec![b"\x80\x04]\x94h\x00.".to_vec()]),
        ("oversized", vec![vec![0x80; 70 * 1024]]),
        (
            "framing",
            vec![dict("heartbeat", "origin", 1), b"more".to_vec()],
        ),
        (
            "not_pickle",
            vec![b"{\"v\":1,\"request\":\"reboot\"}".to_vec()],
        ),
    ];
    for (reason, frames) in &cases {
        // A fresh REQ per request, like the exercise: each gets exactly one reply.
        let s = req(&ctx, id);
        s.send_multipart(frames, 0).unwrap();
        let reply = s
            .recv_bytes(0)
            .unwrap_or_else(|e| panic!("no reply to a {reason} frame: {e}"));
        // The neutral reply: an exercise `ack`, pickled.
        assert_eq!(&reply[..2], b"\x80\x03", "{reason}: {reply:?}");
        assert!(reply.windows(3).any(|w| w == b"ack"), "{reason}: {reply:?}");
    }
    let s = c.status(id).unwrap();
    for (reason, _) in &cases {
        assert!(
            s.dropped.get(*reason).copied().unwrap_or(0) >= 1,
            "{reason} not counted: {:?}",
            s.dropped
        );
    }
    assert!(!mark.exists(), "a pickle ran code");

    // The node still works: a heartbeat gets an ack naming it, and a Python-style election
    // request from a lower ID gets election_ok.
    let s = req(&ctx, id);
    s.send(dict("heartbeat", "origin", 1), 0).unwrap();
    let reply = s.recv_bytes(0).expect("ack after the garbage");
    assert!(reply.windows(9).any(|w| w == b"processes"), "{reply:?}");
    let s = req(&ctx, id);
    s.send(dict("election", "origin", 1), 0).unwrap();
    let reply = s.recv_bytes(0).expect("election_ok after the garbage");
    assert!(reply.windows(11).any(|w| w == b"election_ok"), "{reply:?}");
    assert_eq!(c.view(id), Some(id), "still coordinator");

    // Python decodes our replies with its own pickle.loads (where available).
    if python_available("the pickle.loads check of hostile_and_malformed_frames...") {
        let script = format!(
            "import pickle, zmq\n\
             s = zmq.Context().socket(zmq.REQ); s.setsockopt(zmq.LINGER, 0); s.setsockopt(zmq.RCVTIMEO, 3000)\n\
             s.connect('tcp://127.0.0.1:{id}')\n\
             s.send(pickle.dumps({{'type': 'heartbeat', 'origin': 2}}, protocol=5))\n\
             r = pickle.loads(s.recv())\n\
             assert r['type'] == 'ack' and {id} in r['processes'] and 2 in r['processes'], r\n\
             s.send(pickle.dumps({{'type': 'election', 'origin': 2}}, protocol=2))\n\
             r = pickle.loads(s.recv())\n\
             assert r['type'] == 'election_ok' and r['origin'] == {id}, r\n\
             print('ok')\n"
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
