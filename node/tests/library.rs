//! The library API: nodes started in-process with `bully_node::node::start`, followed through
//! their leadership changes and stopped cleanly. Ports from the OS on 127.0.0.1.

mod common;

use bully_node::leadership::{Change, RoleName};
use bully_node::node::{self, NodeConfig, NodeHandle};
use common::{endpoint, free_ports};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// Reads `node`'s changes until one satisfies `ok` (bounded); the changes read.
fn until(node: &NodeHandle, ok: impl Fn(&Change) -> bool) -> Vec<Change> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match node.changes().recv_timeout(left) {
            Ok(c) => {
                let done = ok(&c);
                seen.push(c);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("node {}: {e} after {seen:?}", node.id()),
        }
    }
}

#[test]
fn an_embedded_cluster_elects_fails_over_and_stops() {
    let ids = free_ports(3);
    let dir = std::env::temp_dir().join(format!("bully-node-test-{}-library", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes: Vec<NodeHandle> = ids
        .iter()
        .map(|&id| {
            let mut cfg = NodeConfig::new(id, endpoint(id))
                .timing(Duration::from_millis(100), Duration::from_millis(300))
                .data_dir(&dir);
            for &p in ids.iter().filter(|&&p| p != id) {
                cfg = cfg.peer(p, endpoint(p));
            }
            node::start(cfg).expect("starts")
        })
        .collect();
    let (low, mid, top) = (ids[0], ids[1], ids[2]);
    for n in &nodes {
        until(n, |c| c.current.coordinator == Some(top));
    }
    let leading = nodes[2].leadership();
    assert!(leading.is_coordinator());
    let first = leading.epoch.expect("an epoch in office");
    assert_eq!(usize::from(first.leader) as u64, top);
    assert_eq!(nodes[0].leadership().role, RoleName::Follower);

    // The coordinator stops: it resigns and reports its step-down last ...
    nodes[2].stop().expect("a clean stop");
    let last: Change = nodes[2].changes().try_iter().last().expect("a last change");
    assert!(last.stepped_down(), "{last:?}");
    assert_eq!(last.current.role, RoleName::Stopped);
    assert_eq!(nodes[2].leadership().role, RoleName::Stopped);

    // ... and the next highest takes office with a higher epoch.
    let seen = until(&nodes[1], |c| c.current.is_coordinator());
    let took = seen.last().unwrap();
    assert!(took.took_office());
    let second = took.current.epoch.unwrap();
    assert!(second > first, "{second} above {first}");
    until(&nodes[0], |c| c.current.coordinator == Some(mid));
    for n in &mut nodes {
        let id = n.id();
        n.stop().unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(n.stop().is_ok(), "a second stop is harmless");
    }
    assert_eq!(nodes[0].id(), low);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_configuration_error_is_returned_not_panicked() {
    let port = free_ports(1)[0];
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let err = node::start(NodeConfig::new(port, endpoint(port)).metrics(busy))
        .err()
        .expect("the metrics address is in use");
    assert!(matches!(err, node::NodeError::Config(_)), "{err}");
    let err = node::start(NodeConfig::new(port, endpoint(port)).cluster_key("/nonexistent/key"))
        .err()
        .expect("no key file");
    assert!(err.to_string().contains("/nonexistent/key"), "{err}");
}
