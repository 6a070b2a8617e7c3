//! Hostile input against real nodes on 127.0.0.1: an impostor without the cluster key, a flood
//! of garbage, oversized and replayed frames, bad key files and bad arguments.

mod common;

use bully_model::{Epoch, Members, Msg, Tag};
use bully_node::auth::{Authenticator, ClusterKey};
use bully_node::wire::{self, Envelope};
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const H: u64 = 100;
/// Generous: the flood and the shared machine must not make a follower give up on a live
/// coordinator (the test asserts that nothing changes, not how fast anything is).
const T: u64 = 1000;
const SETTLE: Duration = Duration::from_secs(20);

const KEY: &[u8] = b"test cluster key: 32 bytes long!";

fn write_key(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A keyed cluster of `n` nodes, started and settled on the highest.
fn keyed_cluster(name: &str, n: usize) -> (Net, PathBuf, (u64, common::Epoch)) {
    let mut net = Net::new(name, n, H, T);
    let key = net.dir.join("cluster.key");
    write_key(&key, KEY, 0o600);
    for id in net.ids.clone() {
        let mut a = net.full_args(id);
        a.extend(["--cluster-key".into(), key.display().to_string()]);
        net.start_with(id, a);
    }
    let ids = net.ids.clone();
    let top = *ids.last().unwrap();
    let (agreed, _) = net.wait_agreement("the initial election", &ids, SETTLE, |c, _| c == top);
    (net, key, agreed)
}

/// A wiretap: a ROUTER that one member is told is another member's endpoint; it records every
/// message (the MAC'd frames as sent) and forwards it to the real one. Stops in `Drop`.
struct Tap {
    frames: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tap {
    fn start(port: u64, to: u64) -> Tap {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (f, st) = (frames.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let ctx = zmq::Context::new();
            let inbox = ctx.socket(zmq::ROUTER).unwrap();
            inbox.set_linger(0).unwrap();
            inbox.bind(&endpoint(port)).unwrap();
            let out = ctx.socket(zmq::DEALER).unwrap();
            out.set_linger(0).unwrap();
            // The original goes through (a passive recording), also before `to` listens.
            out.set_sndtimeo(5000).unwrap();
            out.connect(&endpoint(to)).unwrap();
            ready_tx.send(()).unwrap();
            while !st.load(Ordering::SeqCst) {
                if inbox.poll(zmq::POLLIN, 20).unwrap_or(0) == 0 {
                    continue;
                }
                while let Ok(parts) = inbox.recv_multipart(zmq::DONTWAIT) {
                    let message: Vec<Vec<u8>> = parts[1..].to_vec();
                    out.send_multipart(&message, 0).unwrap();
                    f.lock().unwrap().push(message);
                }
            }
        });
        ready_rx.recv().unwrap();
        Tap {
            frames,
            stop,
            thread: Some(thread),
        }
    }

    fn captured(&self) -> Vec<Vec<Vec<u8>>> {
        self.frames.lock().unwrap().clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dealer(ctx: &zmq::Context, id: u64) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).unwrap();
    s.set_linger(0).unwrap();
    s.set_sndhwm(100_000).unwrap();
    s.connect(&endpoint(id)).unwrap();
    s
}

/// An ELECTION from an injected sender (its tag only comes back in the answer).
fn election() -> Msg {
    Msg::Election { tag: Tag::first(1) }
}

fn envelope(from: u64, msg: Msg) -> Envelope {
    Envelope {
        v: wire::VERSION,
        from,
        // A valid endpoint even for an ID that is not a port.
        from_endpoint: Some(format!("tcp://127.0.0.1:{}", from % 65535 + 1)),
        peers: Default::default(),
        queued_ms: None,
        sent: None,
        msg,
    }
}

/// What an impostor with the highest ID sends to take over: every message that could crown it.
fn takeover_messages(impostor: u64, members: &[u64]) -> Vec<Msg> {
    let epoch = Epoch {
        round: 1_000_000,
        leader: wire::id(impostor),
    };
    let all = Members::new(members.iter().chain([&impostor]).map(|&i| wire::id(i)));
    vec![
        election(),
        Msg::Halt { epoch },
        Msg::Coordinator {
            epoch,
            members: all.clone(),
        },
        Msg::HeartbeatAck {
            tag: Tag::first(1),
            coordinator: Some(epoch),
            promised: epoch,
            members: all,
        },
    ]
}

fn now_ms() -> u64 {
    bully_node::wire::unix_ms()
}

fn names(net: &Net, ids: &[u64], who: u64) -> bool {
    ids.iter().any(|&id| {
        net.status(id).is_some_and(|s| {
            s.coordinator.map(id_u64) == Some(who)
                || s.members
                    .as_ref()
                    .is_some_and(|m| m.iter().any(|x| id_u64(x) == who))
        })
    })
}

#[test]
fn an_impostor_with_the_highest_id_but_without_the_key_changes_nothing() {
    let (net, _key, agreed) = keyed_cluster("impostor", 3);
    let ids = net.ids.clone();
    // A free port above every member: the highest ID, and an inbox for any reply.
    let impostor = free_ports(8).into_iter().max().unwrap().max(ids[2] + 1);
    let ctx = zmq::Context::new();
    let socks: Vec<zmq::Socket> = ids.iter().map(|&id| dealer(&ctx, id)).collect();
    let mut wrong_key = Authenticator::new(
        ClusterKey::from_bytes(b"a guess at the key, 16+").unwrap(),
        1,
    );
    let t0 = Instant::now();
    let mut sent = 0u64;
    // Two seconds of every takeover message, in the right wire format: plain (as an
    // unauthenticated node would), and MAC'd and stamped with a wrong key.
    while t0.elapsed() < Duration::from_secs(2) {
        for (s, &to) in socks.iter().zip(&ids) {
            for m in takeover_messages(impostor, &ids) {
                let env = envelope(impostor, m);
                s.send(wire::encode(&env), 0).unwrap();
                s.send_multipart(wrong_key.seal(&env, to, now_ms()), 0)
                    .unwrap();
                sent += 2;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Everything counted as dropped, nothing reached the protocol.
    net.wait_for("every frame to be counted", Duration::from_secs(10), || {
        let total: u64 = ids
            .iter()
            .filter_map(|&id| net.status(id))
            .map(|s| {
                s.dropped.get("unauthenticated").copied().unwrap_or(0)
                    + s.dropped.get("bad_mac").copied().unwrap_or(0)
            })
            .sum();
        (total == sent).then_some(())
    });
    assert_eq!(net.agreement(&ids), Some(agreed), "the coordinator changed");
    assert!(!names(&net, &ids, impostor), "the impostor became known");
    for &id in &ids {
        let s = net.status(id).unwrap();
        assert_eq!(s.auth.as_ref().map(|a| a.enabled), Some(true), "{s:?}");
    }
    eprintln!("impostor: {sent} frames sent, all dropped; coordinator still {agreed:?}");
}

/// The control experiment: the same impostor against a cluster without a key takes over, so
/// the test above shows the key at work, not an impostor that could not have won anyway.
#[test]
fn without_a_key_the_same_impostor_takes_over() {
    let mut net = Net::new("impostor-open", 3, H, T);
    net.start_all_full();
    let ids = net.ids.clone();
    net.wait_agreement("the initial election", &ids, SETTLE, |c, _| c == ids[2]);
    let impostor = free_ports(8).into_iter().max().unwrap().max(ids[2] + 1);
    let ctx = zmq::Context::new();
    let socks: Vec<zmq::Socket> = ids.iter().map(|&id| dealer(&ctx, id)).collect();
    let msgs = takeover_messages(impostor, &ids);
    net.wait_for(
        "a node to follow the impostor",
        Duration::from_secs(10),
        || {
            for s in &socks {
                s.send(wire::encode(&envelope(impostor, msgs[2].clone())), 0)
                    .unwrap();
            }
            ids.iter()
                .any(|&id| {
                    net.status(id)
                        .is_some_and(|s| s.coordinator.map(id_u64) == Some(impostor))
                })
                .then_some(())
        },
    );
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A small deterministic generator (the flood needs variety, not quality).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The drop reasons of the flood's frames (no legitimate frame is dropped for any of them).
const FLOOD_REASONS: [&str; 6] = [
    "malformed",
    "unauthenticated",
    "bad_mac",
    "oversized",
    "framing",
    "replayed",
];

fn flood_drops(status: &Status) -> u64 {
    FLOOD_REASONS
        .iter()
        .map(|r| status.dropped.get(*r).copied().unwrap_or(0))
        .sum()
}

#[test]
fn a_flood_of_garbage_oversized_and_replayed_frames_leaves_the_cluster_as_it_was() {
    // The recording needs the lowest member's first ELECTION to go through the tap; under
    // heavy load its connection to the tap may not be up yet when it sends (the node drops
    // frames toward a peer it cannot reach), and it then learns the real endpoint first. So a
    // cluster whose tap recorded nothing is started again, with fresh ports (3 tries).
    let mut attempt = 0;
    let (net, tap, member, top, agreed) = loop {
        attempt += 1;
        let mut net = Net::new("flood", 3, H, T);
        let key = net.dir.join("cluster.key");
        write_key(&key, KEY, 0o600);
        let ids = net.ids.clone();
        let (member, top) = (ids[0], ids[2]);
        // A wiretap between the lowest member and the highest: the lowest starts first and
        // asks the highest for an election through the tap, until the highest's own frames
        // tell it the real endpoint. Those are real captured frames, MAC'd with the right key.
        let tap_port = free_ports(4)
            .into_iter()
            .find(|p| !ids.contains(p))
            .unwrap();
        let tap = Tap::start(tap_port, top);
        for &id in &ids {
            let mut a = net.full_args(id);
            if id == member {
                let real = format!("{top}={}", endpoint(top));
                let i = a.iter().position(|x| *x == real).unwrap();
                a[i] = format!("{top}={}", endpoint(tap_port));
            }
            a.extend(["--cluster-key".into(), key.display().to_string()]);
            net.start_with(id, a);
        }
        let (agreed, _) = net.wait_agreement("the initial election", &ids, SETTLE, |c, _| c == top);
        // The tap passes what it records on: wait until the highest has taken in the lowest's
        // ELECTION (its step log says so) before the tap goes, so the recording is a replay.
        let recorded = || {
            net.step_lines(top).iter().any(|st| {
                matches!(
                    &st.event.event,
                    Event::Msg { src, msg: Msg::Election { .. } } if *src == Id::from(member as usize)
                )
            })
        };
        let t0 = std::time::Instant::now();
        while !recorded() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if recorded() {
            break (net, tap, member, top, agreed);
        }
        assert!(
            attempt < 3,
            "[flood] in 3 clusters the tap never passed the lowest member's ELECTION on"
        );
        eprintln!("[flood] attempt {attempt}: the ELECTION did not go through the tap; again");
    };
    let ids = net.ids.clone();
    let captured = tap.captured();
    assert!(!captured.is_empty(), "the tap saw no frame");
    drop(tap);
    let before = net.status(top).unwrap();
    let pid = before.pid;
    let rss0 = rss_kib(pid).unwrap();
    let hb0 = before
        .messages
        .received
        .get("heartbeat")
        .copied()
        .unwrap_or(0);
    let frames0 = before.transport.frames_in;
    let dropped0 = flood_drops(&before);
    let replayed0 = before.dropped.get("replayed").copied().unwrap_or(0);

    // Frames of a member from an earlier incarnation (what a recording made before the member
    // last restarted holds), MAC'd with the right key.
    let inc = net
        .status(member)
        .unwrap()
        .auth
        .and_then(|a| a.incarnation)
        .unwrap();
    let mut old = Authenticator::new(ClusterKey::from_bytes(KEY).unwrap(), inc - 1);
    let mut replays: Vec<Vec<Vec<u8>>> = (0..64)
        .map(|_| old.seal(&envelope(member, election()), top, now_ms()))
        .collect();
    replays.extend(captured.iter().cloned());
    let mut replays_sent = 0u64;
    let mut wrong = Authenticator::new(ClusterKey::from_bytes(b"not the cluster key!").unwrap(), 1);

    let ctx = zmq::Context::new();
    let socks: Vec<zmq::Socket> = (0..4).map(|_| dealer(&ctx, top)).collect();
    let mut rng = Lcg(0x5eed ^ u64::from(std::process::id()));
    let oversized = vec![b'['; 100 * 1024];
    let flood_for = Duration::from_secs(5);
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut rss_max = rss0;
    let mut tick = 0u64;
    while t0.elapsed() < flood_for {
        // Bursts of 200 frames every 10 ms: up to 20 000 frames a second.
        for i in 0..200u64 {
            let s = &socks[(i % 4) as usize];
            let r = match rng.next() % 8 {
                0 => {
                    let n = 1 + (rng.next() % 300) as usize;
                    s.send(rng.bytes(n), zmq::DONTWAIT)
                }
                1 => s.send(
                    &br#"{"v":2,"from":99999999,"msg":{"type":"coordinator","#[..],
                    zmq::DONTWAIT,
                ),
                2 => s.send(
                    wire::encode(&envelope(99_999_999, election())),
                    zmq::DONTWAIT,
                ),
                3 => s.send_multipart(
                    wrong.seal(&envelope(99_999_999, election()), top, now_ms()),
                    zmq::DONTWAIT,
                ),
                4 if tick.is_multiple_of(5) => s.send(&oversized[..], zmq::DONTWAIT),
                4 => s.send_multipart([&b"x"[..], b"y", b"z"], zmq::DONTWAIT),
                _ => {
                    // Every other replay is a captured one.
                    let n = if rng.next().is_multiple_of(2) {
                        64 + (rng.next() as usize) % captured.len()
                    } else {
                        (rng.next() % 64) as usize
                    };
                    let r = s.send_multipart(&replays[n], zmq::DONTWAIT);
                    if r.is_ok() {
                        replays_sent += 1;
                    }
                    r
                }
            };
            if r.is_ok() {
                sent += 1;
            }
        }
        tick += 1;
        if tick.is_multiple_of(10) {
            rss_max = rss_max.max(rss_kib(pid).unwrap_or(0));
            assert!(rss_kib(pid).is_some(), "the flooded node died");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let flood_secs = t0.elapsed().as_secs_f64();
    // Let the node drain its queue, then look: every frame of the flood is dropped, so the
    // flood is over when the drops add up to what was sent.
    let (after, _) = net.wait_for("the flood to be drained", Duration::from_secs(20), || {
        net.status(top)
            .filter(|s| flood_drops(s) - dropped0 >= sent)
    });
    assert_eq!(
        flood_drops(&after) - dropped0,
        sent,
        "every frame of the flood dropped, under its reason: {:?}",
        after.dropped
    );
    let frames = after.transport.frames_in - frames0;
    let drained_secs = t0.elapsed().as_secs_f64();
    let hb = after.messages.received.get("heartbeat").copied().unwrap() - hb0;
    rss_max = rss_max.max(rss_kib(pid).unwrap_or(0));
    eprintln!(
        "flood: {sent} frames in {flood_secs:.1} s ({:.0}/s sent; {replays_sent} replays, {} frames captured by the tap), all {frames} read by {drained_secs:.1} s; \
         heartbeats answered meanwhile: {hb}; RSS {} KiB before, {} KiB at most; dropped: {:?}",
        sent as f64 / flood_secs,
        captured.len(),
        rss0,
        rss_max,
        after.dropped
    );
    // Every replay was refused: the recorded ones and those of an earlier incarnation.
    assert_eq!(
        after.dropped.get("replayed").copied().unwrap_or(0) - replayed0,
        replays_sent,
        "{} captured frames replayed",
        captured.len()
    );
    for reason in FLOOD_REASONS {
        assert!(
            after.dropped.get(reason).copied().unwrap_or(0) > 0,
            "no {reason} drop: {:?}",
            after.dropped
        );
    }
    assert!(
        sent >= 10_000,
        "the flood was too thin to mean anything: {sent}"
    );
    assert!(
        rss_max < 64 * 1024,
        "resident memory grew to {rss_max} KiB (from {rss0} KiB)"
    );
    // It kept answering heartbeats (the followers heartbeat it every 100 ms) ...
    assert!(hb >= 10, "only {hb} heartbeats reached the coordinator");
    // ... so nobody timed out: the same coordinator at the same epoch, one coordinator.
    assert_eq!(net.agreement(&ids), Some(agreed));
    assert!(!names(&net, &ids, 99_999_999));
}

fn run_cli(args: &[String]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bad_arguments_and_bad_key_files_exit_2_with_one_clear_line() {
    let dir = std::env::temp_dir().join(format!("bully-node-test-{}-args", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let open_key = dir.join("open.key");
    write_key(&open_key, KEY, 0o644);
    let group_key = dir.join("group.key");
    write_key(&group_key, KEY, 0o640);
    let short_key = dir.join("short.key");
    write_key(&short_key, b"secret\n", 0o600);
    let good_key = dir.join("good.key");
    write_key(&good_key, KEY, 0o600);
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("data");
    // A data directory whose storage file cannot be read (here: it is a directory; as root,
    // permissions would not stop the read).
    let unreadable = dir.join("unreadable");
    std::fs::create_dir_all(unreadable.join("bully-1.json")).unwrap();
    let l = endpoint(free_ports(1)[0]);
    let base = ["run", "--id", "1", "--listen", &l];
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v = strings(&base);
        v.extend(strings(extra));
        v
    };
    let (f, uf) = (file.to_str().unwrap(), under_file.to_str().unwrap());
    let (ok, gk, sk, ok2) = (
        open_key.to_str().unwrap(),
        group_key.to_str().unwrap(),
        short_key.to_str().unwrap(),
        good_key.to_str().unwrap(),
    );
    let missing = dir.join("missing.key");
    let mk = missing.to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        // Key files.
        (run(&["--cluster-key", ok]), "chmod 600"),
        (run(&["--cluster-key", gk]), "chmod 600"),
        (run(&["--cluster-key", sk]), "at least 16"),
        (run(&["--cluster-key", mk]), "missing.key"),
        (
            run(&["--cluster-key", dir.to_str().unwrap()]),
            "regular file",
        ),
        (
            strings(&["cluster", "--nodes", "3", "--cluster-key", ok]),
            "chmod 600",
        ),
        // Peers.
        (run(&["--peer", "2"]), "ID=ENDPOINT"),
        (
            run(&["--peer", "two=tcp://127.0.0.1:2"]),
            "unsigned integer",
        ),
        (run(&["--peer", "2=127.0.0.1:2"]), "invalid endpoint"),
        (
            run(&["--peer", "2=tcp://127.0.0.1:70000"]),
            "invalid endpoint",
        ),
        (
            run(&["--peer", "2=tcp://a:2", "--peer", "2=tcp://b:2"]),
            "duplicate ID 2",
        ),
        (run(&["--peer", "1=tcp://a:2"]), "own ID"),
        // Ports and endpoints.
        (strings(&["run", "70000"]), "not a valid TCP port"),
        (strings(&["run", "0"]), "not a valid TCP port"),
        (
            strings(&["run", "--id", "1", "--listen", "tcp://127.0.0.1:99999"]),
            "--listen",
        ),
        (strings(&["status", "70000"]), "invalid endpoint"),
        (strings(&["status", "tcp://127.0.0.1"]), "invalid endpoint"),
        (
            strings(&["cluster", "--nodes", "5", "--base-port", "65534"]),
            "not all valid",
        ),
        (
            strings(&["cluster", "--nodes", "3", "--base-port", "70000"]),
            "70000",
        ),
        (strings(&["cluster", "--nodes", "0"]), "--nodes"),
        // Data directories.
        (run(&["--data-dir", f]), "data directory"),
        (run(&["--data-dir", uf]), "data directory"),
        (
            run(&["--data-dir", unreadable.to_str().unwrap()]),
            "cannot read",
        ),
        (
            strings(&["cluster", "--nodes", "3", "--data-dir", uf]),
            "--data-dir",
        ),
        // Syntax.
        (strings(&["run", "--id", "1"]), "--listen"),
        (run(&["--timeout", "soon"]), "--timeout"),
        (strings(&["status"]), "ENDPOINT"),
        (strings(&["launch"]), "launch"),
    ];
    for (args, needle) in &cases {
        let (code, err) = run_cli(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} does not mention {needle:?}"
        );
    }
    // The private key is accepted (the node then fails on something else: a bad peer).
    let (code, err) = run_cli(&run(&["--cluster-key", ok2, "--peer", "x"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("ID=ENDPOINT") && !err.contains("cluster-key"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_key_the_node_says_once_that_the_cluster_is_unauthenticated() {
    let mut net = Net::new("unauth-warning", 2, H, T);
    net.start_all_full();
    let ids = net.ids.clone();
    net.wait_agreement("the initial election", &ids, SETTLE, |c, _| c == ids[1]);
    for &id in &ids {
        let log = std::fs::read_to_string(net.log(id)).unwrap();
        let n = log.matches("UNAUTHENTICATED CLUSTER").count();
        assert_eq!(n, 1, "{id}: {log}");
        assert_eq!(net.status(id).unwrap().auth.map(|a| a.enabled), Some(false));
    }
    // And the status of a keyed node says so, without the key.
    let s: Status = net.status(ids[0]).unwrap();
    assert!(s.auth.and_then(|a| a.incarnation).is_none());
}

/// Membership with a key: a joiner that knows only the contact is learned from its
/// authenticated heartbeat, and learns the others from authenticated replies.
#[test]
fn with_a_key_joiners_are_learned_through_authenticated_messages() {
    let mut net = Net::new("keyed-join", 4, H, T);
    let key = net.dir.join("cluster.key");
    write_key(&key, KEY, 0o600);
    let ids = net.ids.clone();
    let first = ids[0];
    let common: Vec<String> = [
        "--cluster-key".to_string(),
        key.display().to_string(),
        "--data-dir".into(),
        net.dir.display().to_string(),
    ]
    .into_iter()
    .chain(net.timing_args())
    .collect();
    let mut a = vec!["run".to_string(), first.to_string()];
    a.extend(common.clone());
    net.start_with(first, a);
    net.wait_for("the first node to lead", SETTLE, || {
        net.status(first).filter(|s| s.is_coordinator).map(|_| ())
    });
    for &id in &ids[1..] {
        let mut a = vec!["run".to_string(), id.to_string(), first.to_string()];
        a.extend(common.clone());
        net.start_with(id, a);
    }
    let top = ids[3];
    net.wait_for(
        "every node to know all 4 and name the highest",
        SETTLE,
        || {
            let st = net.statuses(&ids);
            let all = st.values().all(|s| {
                s.as_ref()
                    .is_some_and(|s| s.members.as_ref().map(|m| m.len()) == Some(4))
            });
            (all && agreement_of(&st).is_some_and(|(c, _)| c == top)).then_some(())
        },
    );
    for &id in &ids {
        let s = net.status(id).unwrap();
        let drops = &s.dropped;
        assert!(
            !drops.contains_key("bad_mac") && !drops.contains_key("replayed"),
            "{id}: {drops:?}"
        );
    }
}

/// Kills the launcher (and so, through PR_SET_PDEATHSIG, its children) if the test fails.
struct Launcher(std::process::Child);
impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_cluster_launcher_gives_its_key_to_every_child() {
    let dir = std::env::temp_dir().join(format!(
        "bully-node-test-{}-keyed-launcher",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("cluster.key");
    write_key(&key, KEY, 0o600);
    let script = dir.join("script");
    std::fs::write(&script, "at 20s quit\n").unwrap();
    let base = consecutive_free_ports(3);
    let ids: Vec<u64> = (0..3).map(|i| u64::from(base) + i).collect();
    let log = std::fs::File::create(dir.join("launcher.log")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["cluster", "--nodes", "3", "--base-port", &base.to_string()])
        .args(["--heartbeat", "100ms", "--timeout", "1s", "--cluster-key"])
        .arg(&key)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--script")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut launcher = Launcher(cmd.spawn().unwrap());
    let deadline = Instant::now() + SETTLE;
    loop {
        let st: std::collections::BTreeMap<u64, Option<Status>> = ids
            .iter()
            .map(|&id| {
                let s = bully_node::status::query(&endpoint(id), Duration::from_millis(300)).ok();
                (id, s)
            })
            .collect();
        let keyed = st.values().all(|s| {
            s.as_ref()
                .is_some_and(|s| s.auth.as_ref().is_some_and(|a| a.enabled))
        });
        if keyed && agreement_of(&st).is_some_and(|(c, _)| c == ids[2]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the keyed cluster did not settle: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // `quit` on stdin: every child stops.
    use std::io::Write;
    launcher
        .0
        .stdin
        .take()
        .unwrap()
        .write_all(b"quit\n")
        .unwrap();
    let t0 = Instant::now();
    while launcher.0.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the launcher did not quit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = std::fs::read_to_string(dir.join("launcher.log")).unwrap();
    assert!(!out.contains("UNAUTHENTICATED"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mixed clusters do not half-work: a node without the key drops keyed frames (`framing`), a
/// node with it drops keyless ones (`unauthenticated`); neither learns the other.
#[test]
fn keyed_and_keyless_nodes_do_not_mix() {
    let mut net = Net::new("mixed", 2, H, T);
    let key = net.dir.join("cluster.key");
    write_key(&key, KEY, 0o600);
    let (plain, keyed) = (net.ids[0], net.ids[1]);
    // Each started alone (no --peer): each is its own coordinator.
    let alone = |net: &Net, id: u64| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            endpoint(id),
        ];
        a.extend(net.timing_args());
        a
    };
    let a = alone(&net, plain);
    net.start_with(plain, a);
    let mut a = alone(&net, keyed);
    a.extend(["--cluster-key".into(), key.display().to_string()]);
    net.start_with(keyed, a);
    let ctx = zmq::Context::new();
    let mut tx = Authenticator::new(ClusterKey::from_bytes(KEY).unwrap(), 1);
    // What each would send the other (the sockets live until the frames are counted).
    let (to_plain, to_keyed) = (dealer(&ctx, plain), dealer(&ctx, keyed));
    to_plain
        .send_multipart(tx.seal(&envelope(keyed, election()), plain, now_ms()), 0)
        .unwrap();
    to_keyed
        .send(wire::encode(&envelope(plain, election())), 0)
        .unwrap();
    net.wait_for("both frames to be dropped", SETTLE, || {
        let p = net.status(plain)?;
        let k = net.status(keyed)?;
        (p.dropped.get("framing") == Some(&1) && k.dropped.get("unauthenticated") == Some(&1))
            .then_some((p, k))
    });
    for (id, other) in [(plain, keyed), (keyed, plain)] {
        let s = net.status(id).unwrap();
        assert_eq!(member_ids(&s), Some(vec![id]), "{id} learned {other}");
        assert!(s.is_coordinator);
    }
}
