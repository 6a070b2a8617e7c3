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
