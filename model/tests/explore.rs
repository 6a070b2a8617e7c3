//! `bully-model explore` serves stateright's web Explorer: start it on a free port, get
//! answers from its endpoints, stop it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server even when an assertion fails.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn explorer_answers_on_its_endpoints() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args([
                "explore",
                "-n",
                "2",
                "--address",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bully-model explore"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(body) = get(port, "/.status") {
            if body.starts_with("HTTP/1.1 200") {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "explorer did not answer in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.contains("single coordinator"), "{status}");
    assert!(status.contains("epoch order"), "{status}");
    let states = get(port, "/.states").expect("/.states answers");
    assert!(states.starts_with("HTTP/1.1 200"), "{states}");
    assert!(states.contains("action"), "{states}");
    // A path of two steps: each step names its action, shows its state and draws the
    // sequence diagram of the path so far.
    let path = get(port, "/.states/0/0/0").expect("a path answers");
    assert!(path.starts_with("HTTP/1.1 200"), "{path}");
    assert!(
        path.contains("\"action\"") && path.contains("Election"),
        "{path}"
    );
    assert!(
        path.contains("<svg") && path.contains("svg-event-line"),
        "{path}"
    );
    assert!(
        path.contains("Next state") && path.contains("promised"),
        "{path}"
    );
    let page = get(port, "/").expect("/ answers");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    drop(server);
}

#[test]
fn usage_errors_exit_with_code_2() {
    for args in [
        vec!["check", "--processes", "0"],
        vec!["check", "--network", "carrier-pigeon"],
        vec!["frobnicate"],
        vec!["explore", "--address", "not-an-address"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn check_exits_1_on_a_violation_and_0_when_all_hold() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["check", "-n", "2", "--crashes", "0", "--recoveries", "0"]);
    assert_eq!(ok.status.code(), Some(0));
    let bad = run(&[
        "check",
        "-n",
        "2",
        "--crashes",
        "1",
        "--recoveries",
        "1",
        "--variant",
        "no-halt",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.contains("VIOLATED") && text.contains("1. "), "{text}");
    let json = run(&[
        "check",
        "-n",
        "2",
        "--crashes",
        "0",
        "--recoveries",
        "0",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON report");
    assert!(v["unique_states"].as_u64().unwrap() > 0);
    // Without the liveness pass the run still passes, but says liveness was not checked.
    let partial = run(&["check", "-n", "2", "--strategy", "dfs", "--no-liveness"]);
    assert_eq!(partial.status.code(), Some(0));
    let text = String::from_utf8_lossy(&partial.stdout);
    assert!(
        text.contains("not checked in this run") && text.contains("every checked property"),
        "{text}"
    );
}

#[test]
fn check_without_the_reduction_explores_more_states_with_the_same_verdicts() {
    let report = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "-n",
            "2",
            "--crashes",
            "2",
            "--recoveries",
            "2",
            "--json",
        ];
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON report")
    };
    let (reduced, full) = (report(&[]), report(&["--no-reduction"]));
    let states = |v: &serde_json::Value| v["unique_states"].as_u64().unwrap();
    assert!(states(&reduced) < states(&full), "{reduced} {full}");
    // Same properties, same verdicts (the example paths of `sometimes` may differ).
    let verdicts = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].to_string(), p["verdict"].to_string()))
            .collect()
    };
    assert_eq!(verdicts(&reduced), verdicts(&full));
    assert_eq!(verdicts(&reduced).len(), 8);
}

#[test]
fn simulate_finishes_and_finds_a_mutant() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["simulate", "-n", "5", "--runs", "20", "--depth", "100"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let bad = run(&[
        "simulate",
        "-n",
        "3",
        "--runs",
        "5000",
        "--variant",
        "no-halt",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stdout).contains("VIOLATED"));
}

/// The largest resident size among this test process's waited-for children, in bytes (an upper
/// bound on each child's own peak).
fn children_peak_resident() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn a_search_too_large_for_its_memory_budget_stops_with_exit_code_3() {
    // The explicit engine with the budget, and the symbolic one (which grows far more
    // slowly: a smaller budget keeps the test short).
    for (engine, budget, shown) in [
        ("explicit", "1GiB", "1.0 GiB"),
        ("symbolic", "200MiB", "200.0 MiB"),
    ] {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(["check", "-n", "7", "--max-memory", budget, "--threads", "2"])
            .args(["--engine", engine])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{engine}: {text}");
        // It says how far it got, that nothing was settled, and what to try instead.
        assert!(
            text.contains(&format!("STOPPED before the memory budget of {shown}")),
            "{text}"
        );
        assert!(text.contains("unique states"), "{text}");
        assert!(
            text.contains("not settled (no violation in the states seen)"),
            "{text}"
        );
        assert!(text.contains("--strategy dfs --no-liveness"), "{text}");
        assert!(text.contains("bully-model simulate -n 7"), "{text}");
        assert!(text.contains("bully-model check -n 6"), "{text}");
        println!(
            "{engine}: stopped after {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    let peak = children_peak_resident();
    assert!(peak < 3 << 29, "peak resident {peak} bytes, over 1.5 GiB");
    println!("peak {} MiB", peak >> 20);
}

#[test]
fn an_unusable_memory_budget_is_a_usage_error() {
    for size in ["lots", "1KiB", "-3GiB"] {
        let out = Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(["check", &format!("--max-memory={size}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{size}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--max-memory"),
            "{size}: {out:?}"
        );
    }
}

#[test]
fn without_bullys_assumptions_the_counterexample_comes_at_once() {
    for assumption in [["--timing", "async"], ["--network", "lossy"]] {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args(["check", "-n", "3", "--threads", "2"])
            .args(assumption)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("single coordinator") && text.contains("VIOLATED"),
            "{text}"
        );
        assert!(
            text.contains("Stopped at the first counterexample"),
            "{text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{assumption:?} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn the_search_stops_at_the_first_counterexample_with_several_threads_unless_told_to_keep_going() {
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bully-model"))
            .args([
                "check",
                "-n",
                "3",
                "--variant",
                "no-halt",
                "--threads",
                "2",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON report")
    };
    let (first, all) = (run(&[]), run(&["--keep-going"]));
    assert_eq!(first["stopped"]["reason"], "violation", "{first}");
    assert!(all["stopped"].is_null(), "{all}");
    let states = |v: &serde_json::Value| v["unique_states"].as_u64().unwrap();
    assert!(
        states(&first) < states(&all),
        "{} vs {}",
        states(&first),
        states(&all)
    );
    let verdict = |v: &serde_json::Value, name: &str| {
        v["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["verdict"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(verdict(&first, "single coordinator"), "violated");
    // What the stopped search did not finish is not claimed.
    assert_eq!(verdict(&first, "liveness"), "unsettled");
    assert_eq!(verdict(&all, "liveness"), "holds");
}
