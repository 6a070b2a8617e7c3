//! `bully-node workbench` on real processes: the verified node passes every scenario, the
//! project's Python peer too, each deliberately broken Python implementation
//! (`tests/python/broken_*.py`) fails exactly its verdict, usage errors exit 2 leaving no
//! process behind, and Ctrl-C stops every process. Every workbench this file starts is killed
//! in `Drop` (also when a test fails), and its nodes die with it (`PR_SET_PDEATHSIG`). Tests
//! that need Python skip, saying why, where `python3` with pyzmq is missing.

mod common;

use common::{consecutive_free_ports, python_available, BIN};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
/// Short timings keep the suite quick; the bounds the verdicts use scale with them.
/// The tests run their clusters one at a time: each starts five or more processes whose
/// elections must meet a 500 ms timeout, which two cores shared by parallel clusters miss.
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const TIMING: [&str; 4] = ["--heartbeat", "150ms", "--timeout", "500ms"];

/// The template that runs a Python node of `tests/python/<file>`.
fn python_impl(file: &str) -> String {
    format!("python3 -u {PYTHON}/{file} {{port}} {{contact}} --heartbeat {{heartbeat}} --timeout {{timeout}}")
}

/// The verified node, writing the step log the workbench checks with the conformance checker.
fn rust_impl() -> String {
    format!("{BIN} run --wire exercise {{port}} {{contact}} --heartbeat {{heartbeat_ms}}ms --timeout {{timeout_ms}}ms --data-dir {{dir}} --step-log {{steps}}")
}

/// Every scenario's step logs conform to the model, where the checker is built (it belongs to
/// the proptests crate: `cargo build -p bully-proptests --bin conformance`).
fn assert_conforms(results: &Value) {
    for s in results["scenarios"].as_array().unwrap() {
        let c = &s["conformance"];
        match c["conforms"].as_bool() {
            Some(ok) => assert!(ok, "{}: {c}", s["scenario"]),
            None => eprintln!("conformance not checked: {}", c["detail"]),
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bully-workbench-test-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running workbench, killed when dropped.
struct Bench(Option<Child>);

impl Bench {
    fn spawn(args: &[String]) -> Bench {
        let child = Command::new(BIN)
            .arg("workbench")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bully-node workbench");
        Bench(Some(child))
    }

    fn pid(&self) -> i32 {
        self.0.as_ref().unwrap().id() as i32
    }

    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the workbench to the end with `--json`; returns the exit code and the results.
fn run_json(template: &str, scenarios: &[&str], extra: &[&str]) -> (i32, Value, String) {
    let base = consecutive_free_ports(8).to_string();
    let mut args: Vec<String> = vec!["--impl".into(), template.into(), "--base-port".into(), base];
    args.extend(TIMING.iter().map(|s| s.to_string()));
    for s in scenarios {
        args.extend(["--scenario".to_string(), s.to_string()]);
    }
    args.extend(["--json", "--seed", "7"].iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Bench::spawn(&args).wait();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// The verdicts of every scenario with this outcome: `(scenario, verdict)`.
fn with_outcome(results: &Value, outcome: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for s in results["scenarios"].as_array().unwrap() {
        for v in s["verdicts"].as_array().unwrap() {
            if v["outcome"] == outcome {
                out.insert((
                    s["scenario"].as_str().unwrap().to_string(),
                    v["name"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn all_scenarios_pass(template: &str, extra: &[&str]) -> Value {
    let (code, results, stderr) = run_json(template, &[], extra);
    let failed = with_outcome(&results, "fail");
    let unjudged = with_outcome(&results, "not-judged");
    assert!(
        failed.is_empty() && unjudged.is_empty() && code == 0,
        "exit {code}, failed {failed:?}, not judged {unjudged:?}\n{results:#}\nstderr: {stderr}"
    );
    assert_eq!(results["scenarios"].as_array().unwrap().len(), 6);
    results
}

#[test]
fn the_verified_node_passes_every_scenario_and_the_report_is_written() {
    let _serial = one_cluster_at_a_time();
    let dir = scratch("verified");
    let report = dir.join("report");
    let results = all_scenarios_pass(&rust_impl(), &["--report", report.to_str().unwrap()]);
    assert_conforms(&results);
    // The measured times are there for every scenario with a fault.
    for s in results["scenarios"].as_array().unwrap() {
        if s["scenario"] != "join" {
            assert!(
                s["times"]["detect"].is_u64() && s["times"]["elect"].is_u64(),
                "{s:#}"
            );
        }
    }
    for file in ["results.json", "timeline.html", "kill-two.svg"] {
        assert!(
            report.join(file).is_file(),
            "{file} missing in {}",
            report.display()
        );
    }
    let page = fs::read_to_string(report.join("timeline.html")).unwrap();
    assert!(page.contains("<svg") && page.contains("kill-coordinator"));
    let log = report.join("2-kill-coordinator");
    assert!(
        fs::read_dir(&log).unwrap().count() >= 4,
        "node logs in {}",
        log.display()
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_python_peer_passes_every_scenario_beside_a_verified_node() {
    let _serial = one_cluster_at_a_time();
    if !python_available("the_python_peer_passes_every_scenario_beside_a_verified_node") {
        return;
    }
    let results = all_scenarios_pass(
        &python_impl("bully_peer.py"),
        &["--nodes", "3", "--reference", "1"],
    );
    let programs: Vec<&str> = results["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["program"].as_str().unwrap())
        .collect();
    assert_eq!(
        programs,
        ["under-test", "under-test", "reference", "under-test"]
    );
}

/// A broken implementation fails `verdict` in `scenario`, and no other verdict.
fn fails_exactly(file: &str, scenario: &str, verdict: &str) {
    if !python_available(file) {
        return;
    }
    let (code, results, stderr) = run_json(&python_impl(file), &[scenario], &[]);
    let failed = with_outcome(&results, "fail");
    let expected = BTreeSet::from([(scenario.to_string(), verdict.to_string())]);
    assert_eq!(failed, expected, "{file}: {results:#}\nstderr: {stderr}");
    assert_eq!(code, 1, "{file}: a failed verdict exits 1");
}

#[test]
fn an_implementation_that_never_elects_fails_detects() {
    let _serial = one_cluster_at_a_time();
    fails_exactly("broken_never_elects.py", "kill-coordinator", "detects");
}

#[test]
fn an_implementation_where_the_lowest_wins_fails_elects_highest() {
    let _serial = one_cluster_at_a_time();
    let file = "broken_lowest_wins.py";
    if !python_available(file) {
        return;
    }
    let (code, results, stderr) = run_json(&python_impl(file), &["kill-coordinator"], &[]);
    let failed = with_outcome(&results, "fail");
    // Its broken rule also lets two joiners claim office within one timeout: a race, so
    // `single-coordinator` may fail beside `elects-highest`, and nothing else may.
    let highest = ("kill-coordinator".to_string(), "elects-highest".to_string());
    let race = (
        "kill-coordinator".to_string(),
        "single-coordinator".to_string(),
    );
    assert!(
        failed.contains(&highest),
        "{file}: {results:#}\nstderr: {stderr}"
    );
    assert!(
        failed.iter().all(|f| *f == highest || *f == race),
        "{file}: {results:#}\nstderr: {stderr}"
    );
    assert_eq!(code, 1, "{file}: a failed verdict exits 1");
}

#[test]
fn an_implementation_that_notifies_nobody_fails_notifies_all() {
    let _serial = one_cluster_at_a_time();
    fails_exactly(
        "broken_notifies_nobody.py",
        "kill-coordinator",
        "notifies-all",
    );
}

#[test]
fn an_implementation_whose_rep_loop_dies_on_a_bad_frame_fails_responsive() {
    let _serial = one_cluster_at_a_time();
    fails_exactly("broken_rep_dies.py", "bad-frame", "responsive");
}

/// Whether process `pid` still exists.
fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

fn pids(file: &Path) -> Vec<i32> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A template that records each node's PID in `file`, then runs the verified node (or, with
/// `exit_joiners`, exits at once unless it is the first node).
fn recording_impl(file: &Path, exit_joiners: bool) -> String {
    let run = format!("{BIN} run --wire exercise $1 $2 --heartbeat 150ms --timeout 500ms");
    let body = if exit_joiners {
        format!("echo $$ >> {f}; if [ -z \"$2\" ]; then exec {run}; else echo cannot join >&2; exit 3; fi", f = file.display())
    } else {
        format!("echo $$ >> {f}; exec {run}", f = file.display())
    };
    format!("sh -c '{body}' node {{port}} {{contact}}")
}

/// Runs the workbench to its end; asserts exit 2 and a one-line message containing `expect`.
fn usage_error(args: &[String], expect: &str) {
    let out = Bench::spawn(args).wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("workbench: "))
        .collect();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(expect), "{expect:?} not in {stderr}");
}

#[test]
fn usage_errors_exit_2_with_one_line_and_leave_no_process() {
    let _serial = one_cluster_at_a_time();
    let dir = scratch("usage");
    let base = consecutive_free_ports(6);
    let common = |template: &str| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--impl".into(),
            template.into(),
            "--base-port".into(),
            base.to_string(),
        ];
        a.extend(TIMING.iter().map(|s| s.to_string()));
        a.extend(["--scenario".into(), "join".into()]);
        a
    };
    usage_error(&common("python3 my_bully.py {contact}"), "needs {port}");
    // The first node runs, the second exits at once: both are gone afterwards.
    let file = dir.join("pids");
    usage_error(&common(&recording_impl(&file, true)), "exited at once");
    let started = pids(&file);
    assert_eq!(started.len(), 2, "{started:?}");
    assert!(
        started.iter().all(|&p| !alive(p)),
        "left behind: {started:?}"
    );
    // A port of the range is taken: nothing starts.
    let taken = std::net::TcpListener::bind(("127.0.0.1", base + 2)).unwrap();
    let _ = fs::remove_file(&file);
    usage_error(&common(&recording_impl(&file, false)), "is not free");
    assert!(pids(&file).is_empty());
    drop(taken);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_stops_the_workbench_and_every_node() {
    let _serial = one_cluster_at_a_time();
    let dir = scratch("interrupt");
    let file = dir.join("pids");
    let base = consecutive_free_ports(6);
    let mut args: Vec<String> = vec![
        "--impl".into(),
        recording_impl(&file, false),
        "--base-port".into(),
        base.to_string(),
    ];
    args.extend(TIMING.iter().map(|s| s.to_string()));
    let bench = Bench::spawn(&args);
    let t0 = Instant::now();
    while pids(&file).len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the nodes did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(bench.pid(), libc::SIGINT) };
    let out = bench.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let started = pids(&file);
    assert!(
        started.iter().all(|&p| !alive(p)),
        "left behind: {started:?}"
    );
    let _ = fs::remove_dir_all(&dir);
}
