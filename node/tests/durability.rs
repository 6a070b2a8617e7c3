//! Durable state under kill -9: nodes are killed at random moments during repeated elections,
//! many times, and every restart is checked.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const ROUNDS: usize = 50;

/// The saved promise in `bully-<id>.json`, checked to be a whole, valid storage file of `id`.
fn promise_on_disk(net: &Net, id: u64) -> Option<Epoch> {
    let path = net.dir.join(format!("bully-{id}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is corrupt ({e}): {text:?}", path.display()));
    assert_eq!(v["v"], 1, "{text}");
    assert_eq!(v["id"], id, "{text}");
    Some(epoch_of(&v["storage"]["promised"]).unwrap_or_else(|| panic!("no promise: {text}")))
}

fn incarnation_on_disk(net: &Net, id: u64) -> u64 {
    let path = net.dir.join(format!("bully-{id}.incarnation"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{} is corrupt ({e}): {text:?}", path.display()))
}

#[test]
fn kill_9_at_random_moments_never_corrupts_or_rolls_back_the_epoch_file() {
    // Tiny timings: a restarted highest node takes over within a few hundred ms, so a kill at
    // a random moment often falls into an election (and its saves).
    let mut net = Net::new("kill9-storage", 3, 50, 150);
    let key = net.dir.join("cluster.key");
    std::fs::write(&key, "durability test key, 32 bytes..").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let args = |net: &Net, id: u64| {
        let mut a = net.full_args(id);
        a.extend(["--cluster-key".into(), key.display().to_string()]);
        a
    };
    for id in net.ids.clone() {
        let a = args(&net, id);
        net.start_with(id, a);
    }
    let ids = net.ids.clone();
    let top = ids[2];
    net.wait_agreement(
        "the initial election",
        &ids,
        Duration::from_secs(20),
        |c, _| c == top,
    );

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill -9 storage test: seed {seed}");
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // The highest promise each node is known to have made durable.
    let mut floor: BTreeMap<u64, Epoch> = BTreeMap::new();
    let mut kills_in_election = 0;
    let t0 = Instant::now();
    for round in 0..ROUNDS {
        // Mostly the highest (its restart forces an election with saves on every node),
        // sometimes another one.
        let victim = if next(3) == 0 {
            ids[next(3) as usize]
        } else {
            top
        };
        std::thread::sleep(Duration::from_millis(next(150)));
        if let Some(s) = net.status(victim) {
            // `saved` is reported only after the file was replaced and fsynced.
            if let Some(p) = s.saved.as_ref().map(|st| epoch(st.promised)) {
                let f = floor.entry(victim).or_insert(p);
                *f = (*f).max(p);
            }
            if ["electing", "halting", "waiting"].contains(&s.role.as_deref().unwrap_or("")) {
                kills_in_election += 1;
            }
        }
        let inc_before = incarnation_on_disk(&net, victim);
        net.kill9(victim);
        let on_disk = promise_on_disk(&net, victim);
        if let Some(f) = floor.get(&victim) {
            let p = on_disk.expect("a saved promise vanished");
            assert!(
                p >= *f,
                "round {round}: {victim}'s file rolled back to {p:?} below {f:?}"
            );
        }
        if let Some(p) = on_disk {
            floor.insert(victim, p);
        }
        let a = args(&net, victim);
        net.start_with(victim, a);
        // It must start from that file (a corrupt one would make it exit 2) ...
        let deadline = Instant::now() + Duration::from_secs(10);
        let s = loop {
            let child = net.procs.get_mut(&victim).unwrap();
            if let Some(status) = child.try_wait().unwrap() {
                panic!("round {round}: {victim} exited at restart: {status}");
            }
            if let Some(s) = net.status(victim) {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {victim} never answered"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // ... with the promise it saved, or a newer one, and a new, larger incarnation.
        if let Some(p) = on_disk {
            let loaded = s.saved.as_ref().map(|st| epoch(st.promised)).unwrap();
            assert!(
                loaded >= p,
                "round {round}: restarted with {loaded:?} < {p:?}"
            );
        }
        let inc_after = s.auth.as_ref().and_then(|a| a.incarnation).unwrap();
        assert!(
            inc_after > inc_before,
            "round {round}: incarnation went back"
        );
        assert_eq!(incarnation_on_disk(&net, victim), inc_after);
    }
    // The kills did fall into elections (about a third of them do; none would be a test of
    // something else).
    assert!(kills_in_election > 0, "no kill fell into an election");
    // After all that, one coordinator, the highest, above every promise on disk.
    let ((c, e), _) = net.wait_agreement(
        "one coordinator after the kills",
        &ids,
        Duration::from_secs(20),
        |c, _| c == top,
    );
    for (&id, f) in &floor {
        let p = promise_on_disk(&net, id).unwrap();
        assert!(p >= *f, "{id}: {p:?} < {f:?}");
    }
    assert!(floor.values().all(|f| e >= *f), "{e:?} below a promise");
    eprintln!(
        "kill -9 storage test: {ROUNDS} kills in {:.1} s ({kills_in_election} during an election), \
         every file whole and never behind; {c} leads at {e:?}",
        t0.elapsed().as_secs_f64()
    );
}

/// The tags a run of a node asked with (its ELECTIONs and HEARTBEATs), and its start number.
fn run_tags(steps: &[bully_model::LoggedStep]) -> (u64, Vec<bully_model::Tag>) {
    let starts = steps[0].after.starts;
    let tags = steps
        .iter()
        .flat_map(|s| &s.commands)
        .filter_map(|c| match c {
            Cmd::Send {
                msg: Msg::Election { tag } | Msg::Heartbeat { tag },
                ..
            } => Some(*tag),
            _ => None,
        })
        .collect();
    (starts, tags)
}

/// A node whose storage is lost restarts as new, with no promise (what that allows is the
/// checker's `--lose-storage` verdict, docs "A lost data directory"). Its start is numbered
/// from its clock, so what it asks never carries a tag of an earlier run: a reply still on its
/// way to that run cannot count for this one. Twice: once only the storage file is gone (the
/// node sees it ran before, and warns), once the whole data directory.
#[test]
fn a_node_restarted_without_its_storage_asks_with_tags_of_its_own() {
    let (mut net, low, top) = Net::settled_pair("lost-storage", 50, 300, Duration::from_secs(10));
    let ids = net.ids.clone();
    let mut runs: Vec<Vec<bully_model::LoggedStep>> = Vec::new();
    let storage = format!("bully-{low}.json");
    let incarnation = format!("bully-{low}.incarnation");
    for lost in [vec![&storage], vec![&storage, &incarnation]] {
        // Some heartbeats of this run, then kill -9 and lose what it saved.
        std::thread::sleep(Duration::from_millis(300));
        net.kill9(low);
        let seen: usize = runs.iter().map(Vec::len).sum();
        runs.push(net.step_lines(low)[seen..].to_vec());
        for file in &lost {
            std::fs::remove_file(net.dir.join(file)).unwrap();
        }
        let log_before = std::fs::read_to_string(net.log(low))
            .unwrap_or_default()
            .len();
        net.start_full(low);
        net.wait_agreement(
            "the restarted node to follow again",
            &ids,
            Duration::from_secs(10),
            |c, _| c == top,
        );
        let log = std::fs::read_to_string(net.log(low)).unwrap();
        let warned = log[log_before..].contains("its storage file is gone");
        assert_eq!(
            warned,
            lost.len() == 1,
            "warned only when the directory says it ran before:\n{}",
            &log[log_before..]
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let seen: usize = runs.iter().map(Vec::len).sum();
    runs.push(net.step_lines(low)[seen..].to_vec());
    let mut earlier: Vec<bully_model::Tag> = Vec::new();
    let mut last_start = 0;
    for (i, run) in runs.iter().enumerate() {
        if i > 0 {
            assert!(
                matches!(run[0].event.event, Event::Start { storage: None, .. }),
                "run {i} started without storage: {:?}",
                run[0].event
            );
        }
        let (start, tags) = run_tags(run);
        // Without the clock's number every run would start at 1.
        assert!(
            start > last_start && start > 1 << 30,
            "run {i}: start {start}"
        );
        assert!(!tags.is_empty(), "run {i} asked");
        let reused: Vec<_> = tags.iter().filter(|t| earlier.contains(t)).collect();
        assert!(
            reused.is_empty(),
            "run {i} asked with earlier tags: {reused:?}"
        );
        earlier.extend(tags);
        last_start = start;
    }
}
