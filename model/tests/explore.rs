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
