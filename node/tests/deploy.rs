//! Deploying nodes: one member list (or one config file) shared by every host, leadership
//! hooks, Prometheus metrics, and the library API. Real processes on 127.0.0.1, killed in `Drop`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const H: u64 = 100;
const T: u64 = 300;
const SETTLE: Duration = Duration::from_secs(20);

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `run --id ID --peer ...` with every member listed, this node included, and no --listen.
fn shared_list_args(net: &Net, id: u64) -> Vec<String> {
    let mut a = strings(&["run", "--id", &id.to_string()]);
    for &p in &net.ids {
        a.push("--peer".into());
        a.push(format!("{p}={}", endpoint(p)));
    }
    a.extend(strings(&["--data-dir", &net.dir.display().to_string()]));
    a.extend(net.timing_args());
    a
}

/// GET `path` from `addr` (HTTP/1.0); the status line's code and the body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// The samples of a Prometheus text exposition: `name{labels}` → value (comments skipped).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(addr: &str) -> Option<BTreeMap<String, f64>> {
    match http_get(addr, "/metrics")? {
        (200, body) => Some(samples(&body)),
        _ => None,
    }
}

#[test]
fn every_host_can_share_one_member_list() {
    let mut net = Net::new("shared-list", 3, H, T);
    for id in net.ids.clone() {
        let args = shared_list_args(&net, id);
        net.start_with(id, args);
    }
    let ids = net.ids.clone();
    let top = ids[2];
    net.wait_agreement("the highest in office", &ids, SETTLE, |c, _| c == top);
}

#[test]
fn an_own_entry_at_another_endpoint_is_refused_with_the_reason() {
    let out = Command::new(BIN)
        .args([
            "run",
            "--id",
            "1",
            "--listen",
            "tcp://127.0.0.1:7001",
            "--peer",
            "1=tcp://127.0.0.1:7999",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("own ID") && err.contains("tcp://127.0.0.1:7999"),
        "{err}"
    );
}

#[test]
fn hooks_tell_who_takes_office_with_the_fencing_token() {
    let mut net = Net::new("hooks", 3, H, T);
    let offices = net.dir.join("offices");
    let downs = net.dir.join("step-downs");
    for id in net.ids.clone() {
        let mut args = shared_list_args(&net, id);
        args.extend([
            "--on-coordinator".into(),
            format!("echo $BULLY_ID $BULLY_EPOCH >> {}", offices.display()),
            "--on-step-down".into(),
            format!(
                "echo $BULLY_ID $BULLY_PREVIOUS_ROLE $BULLY_ROLE >> {}",
                downs.display()
            ),
        ]);
        net.start_with(id, args);
    }
    let ids = net.ids.clone();
    let (mid, top) = (ids[1], ids[2]);
    let lines = |path: &std::path::PathBuf| -> Vec<(u64, String)> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (id, rest) = l.split_once(' ')?;
                Some((id.parse().ok()?, rest.to_string()))
            })
            .collect()
    };
    let round = |epoch: &str| -> u64 { epoch.split('.').next().unwrap().parse().unwrap() };
    net.wait_for("a line for the highest", SETTLE, || {
        lines(&offices).into_iter().find(|(id, _)| *id == top)
    });
    let first = lines(&offices);
    assert!(
        first.iter().all(|(id, _)| *id == top),
        "only the highest took office: {first:?}"
    );
    let top_epoch = first[0].1.clone();
    assert_eq!(
        top_epoch.split('.').nth(1),
        Some(top.to_string().as_str()),
        "the epoch is round.leader: {top_epoch}"
    );

    net.kill9(top);
    let (line, _) = net.wait_for("a line for the next highest", SETTLE, || {
        lines(&offices).into_iter().find(|(id, _)| *id == mid)
    });
    assert!(
        round(&line.1) > round(&top_epoch),
        "the failover's epoch {} is above {top_epoch}",
        line.1
    );

    // A coordinator that shuts down steps down: its hook still runs before it exits.
    let status = net.terminate(mid, Duration::from_secs(10));
    assert!(status.success());
    let downs = lines(&downs);
    assert!(
        downs.contains(&(mid, "coordinator stopped".into())),
        "{downs:?}"
    );
}

#[test]
fn a_hook_that_fails_or_hangs_is_counted_and_the_node_carries_on() {
    let mut net = Net::new("bad-hooks", 2, H, T);
    let ids = net.ids.clone();
    let ports = free_ports(2);
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    for (i, &id) in ids.iter().enumerate() {
        let mut args = shared_list_args(&net, id);
        args.extend(strings(&[
            "--on-change",
            "sleep 30",
            "--hook-timeout",
            "200ms",
            "--on-coordinator",
            "exit 3",
            "--metrics",
            &addr(i),
        ]));
        net.start_with(id, args);
    }
    let top = ids[1];
    net.wait_agreement("the highest in office", &ids, SETTLE, |c, _| c == top);
    let (m, _) = net.wait_for("a hook killed and one failed", SETTLE, || {
        scrape(&addr(1)).filter(|m| {
            m.get(r#"bully_hook_runs_total{hook="on-change",outcome="timeout"}"#) >= Some(&1.0)
                && m.get(r#"bully_hook_runs_total{hook="on-coordinator",outcome="failed"}"#)
                    == Some(&1.0)
        })
    });
    assert_eq!(m["bully_is_coordinator"], 1.0);
    // Still answering, still in office while hooks keep being killed.
    std::thread::sleep(Duration::from_millis(600));
    net.wait_agreement("still in office", &ids, SETTLE, |c, _| c == top);
}

#[test]
fn metrics_show_who_leads() {
    let mut net = Net::new("metrics", 3, H, T);
    let ids = net.ids.clone();
    let ports = free_ports(3);
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    for (i, &id) in ids.iter().enumerate() {
        let mut args = shared_list_args(&net, id);
        args.extend(["--metrics".into(), addr(i)]);
        net.start_with(id, args);
    }
    let top = ids[2];
    let ((_, epoch), _) =
        net.wait_agreement("the highest in office", &ids, SETTLE, |c, _| c == top);
    let (follower, _) = net.wait_for("a heartbeat round trip measured", SETTLE, || {
        scrape(&addr(0)).filter(|m| m.get("bully_heartbeat_rtt_seconds_count") >= Some(&1.0))
    });
    let leader = scrape(&addr(2)).expect("the coordinator serves /metrics");
    assert_eq!(leader["bully_is_coordinator"], 1.0);
    assert_eq!(follower["bully_is_coordinator"], 0.0);
    for m in [&leader, &follower] {
        assert_eq!(m["bully_epoch_round"], epoch.0 as f64);
        assert_eq!(m["bully_coordinator_id"], top as f64);
        assert!(m["bully_role_changes_total"] >= 1.0);
        assert!(m.contains_key("bully_elections_started_total"));
    }
    assert!(follower[r#"bully_messages_sent_total{type="heartbeat"}"#] >= 1.0);
    assert!(leader[r#"bully_messages_received_total{type="heartbeat"}"#] >= 1.0);
    assert!(leader[r#"bully_messages_sent_total{type="coordinator"}"#] >= 2.0);

    // A garbage frame is counted by reason.
    let ctx = zmq::Context::new();
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.connect(&endpoint(top)).unwrap();
    dealer.send("not a frame", 0).unwrap();
    net.wait_for("the garbage frame counted", SETTLE, || {
        scrape(&addr(2)).filter(|m| {
            m.iter()
                .any(|(k, v)| k.starts_with("bully_frames_dropped_total{") && *v >= 1.0)
        })
    });
    assert_eq!(http_get(&addr(2), "/nothing").map(|r| r.0), Some(404));
}

#[test]
fn one_config_file_for_the_whole_cluster() {
    let mut net = Net::new("config", 3, H, T);
    let ids = net.ids.clone();
    let file = net.dir.join("cluster.toml");
    let mut text = format!(
        "heartbeat = \"{H}ms\"\ntimeout = \"{T}ms\"\ndata-dir = \"{}\"\n[members]\n",
        net.dir.display()
    );
    for &id in &ids {
        text += &format!("{id} = \"{}\"\n", endpoint(id));
    }
    fs::write(&file, text).unwrap();
    for &id in &ids {
        let args = strings(&[
            "run",
            "--config",
            &file.display().to_string(),
            "--id",
            &id.to_string(),
        ]);
        net.start_with(id, args);
    }
    let top = ids[2];
    net.wait_agreement("the highest in office", &ids, SETTLE, |c, _| c == top);
    let s = net.status(ids[0]).unwrap();
    assert_eq!(s.timing.heartbeat_ms, H as f64, "the file's timing");
    assert!(
        net.dir.join(format!("bully-{}.json", ids[0])).exists(),
        "the file's data directory"
    );
}

#[test]
fn a_bad_config_file_gets_one_line_naming_file_and_key() {
    let dir = std::env::temp_dir().join(format!("bully-node-test-{}-badcfg", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "heartbeat = 5\n[members]\n1 = \"tcp://127.0.0.1:7001\"\n",
            "1",
            "key `heartbeat`",
        ),
        (
            "colour = \"red\"\n[members]\n1 = \"tcp://127.0.0.1:7001\"\n",
            "1",
            "unknown key `colour`",
        ),
        (
            "[members]\n1 = \"tcp://127.0.0.1:7001\"\n",
            "2",
            "no member 2",
        ),
        ("[members\n", "1", "line 1"),
    ];
    for (i, (text, id, expected)) in cases.into_iter().enumerate() {
        let file = dir.join(format!("bad-{i}.toml"));
        fs::write(&file, text).unwrap();
        let out = Command::new(BIN)
            .args(["run", "--config", &file.display().to_string(), "--id", id])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{text:?}: one line: {err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains(expected),
            "{text:?}: {err}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
