//! An application that works only while its node leads, and stamps its work with the epoch
//! (the fencing token), using `bully-node` as a library.
//!
//! Three terminals (or `&`), one per host; each runs its own member and lists every member:
//!
//! ```sh
//! cargo run -p bully-node --example leader_work -- 1 1=tcp://127.0.0.1:7001 2=tcp://127.0.0.1:7002 3=tcp://127.0.0.1:7003
//! cargo run -p bully-node --example leader_work -- 2 1=tcp://127.0.0.1:7001 2=tcp://127.0.0.1:7002 3=tcp://127.0.0.1:7003
//! cargo run -p bully-node --example leader_work -- 3 1=tcp://127.0.0.1:7001 2=tcp://127.0.0.1:7002 3=tcp://127.0.0.1:7003
//! ```
//!
//! Node 3 works; stop it with Ctrl-C (it resigns) and node 2 takes over with a higher epoch.
//! Whatever receives the work (a database, a queue) keeps the highest epoch it has seen and
//! refuses work stamped with a lower one: a deposed leader that has not noticed yet is fenced.

use bully_node::node::{self, NodeConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: leader_work ID ID=ENDPOINT... (every member, this one included)";
    let Some(id) = args.first().and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut members = Vec::new();
    for a in &args[1..] {
        match a.split_once('=').map(|(i, e)| (i.parse::<u64>(), e)) {
            Some((Ok(i), e)) => members.push((i, e.to_string())),
            _ => {
                eprintln!("{a:?}: expected ID=ENDPOINT\n{usage}");
                std::process::exit(2);
            }
        }
    }
    let Some((_, own)) = members.iter().find(|(i, _)| *i == id).cloned() else {
        eprintln!("member {id} is not listed\n{usage}");
        std::process::exit(2);
    };
    let mut config =
        NodeConfig::new(id, own).timing(Duration::from_millis(200), Duration::from_millis(600));
    for (i, endpoint) in members.into_iter().filter(|(i, _)| *i != id) {
        config = config.peer(i, endpoint);
    }
    let mut node = match node::start(config) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("leader_work: {e}");
            std::process::exit(2);
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .expect("a SIGINT handler");
    let mut done = 0u64;
    while !stop.load(Ordering::SeqCst) {
        // Leadership changes arrive in order; wait at most one work period for the next.
        if let Ok(change) = node.changes().recv_timeout(Duration::from_millis(500)) {
            println!(
                "node {id}: {} -> {} (coordinator {:?}, epoch {:?})",
                change.previous.role,
                change.current.role,
                change.current.coordinator,
                change.current.epoch.map(|e| e.to_string())
            );
        }
        let now = node.leadership();
        if let (true, Some(epoch)) = (now.is_coordinator(), now.epoch) {
            done += 1;
            println!("node {id}: work item {done}, stamped with epoch {epoch}");
        }
    }
    node.stop().expect("a clean stop");
}
