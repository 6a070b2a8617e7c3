//! `bully-model explore --trace`: a trace file opens in the web Explorer. Over HTTP, as a
//! browser would: the link `explore` prints is followed through the Explorer's JSON endpoint
//! (`/.states/I/A1/…`), and at each step the Explorer shows the trace's action and state.

use bully_model::properties::describe_process;
use bully_model::trace::{TraceFile, TraceProcess};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bully-model");

/// Kills the server even when an assertion fails.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory of this test's own, removed at the end (also when the test fails).
struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bully-explore-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET over HTTP/1.0 (the server then sends the body whole, not in chunks): the status
/// line and the body, or None if the server does not answer (yet).
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// The steps the Explorer lists after `prefix` (its positions, `/I/A1/…`).
fn next_steps(port: u16, prefix: &str) -> Vec<serde_json::Value> {
    let (status, body) = get(port, &format!("/.states{prefix}")).expect("/.states answers");
    assert!(status.contains("200"), "/.states{prefix}: {status}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Runs `bully-model` to its end, killing it after 60 s if it does not stop on its own.
fn run(args: &[&str]) -> Output {
    let mut child = Server(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{args:?} did not stop in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let Server(inner) = &mut child;
    let mut out = Output {
        status: inner.try_wait().unwrap().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    inner
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out.stdout)
        .unwrap();
    inner
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut out.stderr)
        .unwrap();
    out
}

/// The summary lines the Explorer must show first for processes `procs` with `in_flight`
/// messages in flight, from the trace file alone.
fn summary_of(procs: &[TraceProcess], in_flight: usize) -> Vec<String> {
    let mut lines: Vec<String> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            TraceProcess::Up { state, .. } => describe_process(i, Some(&state.role)),
            TraceProcess::Crashed { .. } => describe_process(i, None),
        })
        .collect();
    lines.push(format!("{in_flight} message(s) in flight"));
    lines
}

/// Asserts that the Explorer's text of a state starts with `summary` (the in-flight line may
/// end with a colon, its messages listed below) and shows the full state below.
fn assert_summary_first(shown: &str, summary: &[String]) {
    let lines: Vec<&str> = shown.lines().collect();
    let n = summary.len();
    assert_eq!(
        lines[..n - 1],
        summary[..n - 1],
        "the processes, first:\n{shown}"
    );
    assert_eq!(
        lines[n - 1].trim_end_matches(':'),
        summary[n - 1],
        "then the messages in flight:\n{shown}"
    );
    assert!(
        shown.contains("\n\nSysState {"),
        "the full state below:\n{shown}"
    );
}

/// Serves `file` with `explore --trace` (and `flags`), follows the printed link step by step
/// and checks that the Explorer shows the trace's states on the way. Returns the positions.
fn follow_the_link(file: &Path, flags: &[&str]) -> Vec<usize> {
    let trace = TraceFile::parse(&std::fs::read_to_string(file).unwrap()).unwrap();
    let model = trace.config.clone().into_model();
    let path = trace.path(&model).expect("the trace replays");
    let states = path.states(&model);
    let port = free_port();
    let mut server = Server(
        Command::new(BIN)
            .args(["explore", "--address", &format!("127.0.0.1:{port}")])
            .arg("--trace")
            .arg(file)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bully-model explore"),
    );
    // The printed link, read on a thread (a server that printed nothing must not hang us).
    let (tx, rx) = mpsc::channel();
    let stdout = server.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let prefix = format!("http://127.0.0.1:{port}/#/steps/");
    let link = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("explore prints the link");
        if let Some(at) = line.find(&prefix) {
            assert!(line.starts_with("The trace's last state"), "{line}");
            break line[at + prefix.len()..].to_string();
        }
    };
    let positions: Vec<usize> = link.split('/').map(|p| p.parse().unwrap()).collect();
    assert_eq!(positions.len(), trace.steps.len() + 1, "{link}");

    // The link is printed just before the server listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get(port, "/.status").is_some_and(|(status, _)| status.contains("200")) {
        assert!(
            Instant::now() < deadline,
            "the Explorer did not answer in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Step 0, the initial state: the Explorer lists the initial states.
    let listed = next_steps(port, "");
    let init = listed
        .iter()
        .find(|s| s["actionIndex"] == positions[0])
        .expect("the link's initial state is listed");
    let shown = init["state"].as_str().unwrap();
    assert_eq!(shown, format!("{:#?}", path.init));
    // (The file does not record how many messages the initial state holds: the model says.)
    assert_summary_first(shown, &summary_of(&trace.initial, path.init.network.len()));

    // Then each step: listed after the path so far, with the trace's action and state.
    let mut so_far = format!("/{}", positions[0]);
    for (k, step) in trace.steps.iter().enumerate() {
        let listed = next_steps(port, &so_far);
        let next = listed
            .iter()
            .find(|s| s["actionIndex"] == positions[k + 1])
            .unwrap_or_else(|| panic!("step {}: position {} listed", k + 1, positions[k + 1]));
        assert_eq!(next["action"], step.text.as_str(), "step {}", k + 1);
        let shown = next["state"].as_str().expect("a state");
        assert_eq!(shown, format!("{:#?}", states[k]), "step {}", k + 1);
        assert_summary_first(shown, &summary_of(&step.processes, step.in_flight));
        // The outcome (what the Explorer shows unless asked for the complete state) starts
        // with the same summary.
        let outcome = next["outcome"].as_str().expect("an outcome");
        let summary_len = shown.find("\n\n").unwrap();
        assert_eq!(
            outcome[..summary_len],
            shown[..summary_len],
            "step {}",
            k + 1
        );
        // The sequence diagram draws the whole path so far.
        assert!(
            next["svg"].as_str().is_some_and(|s| s.contains("<svg")),
            "step {}",
            k + 1
        );
        so_far += &format!("/{}", positions[k + 1]);
    }
    drop(server);
    positions
}

/// The hint ending a report with a counterexample: the command, and the link's positions.
fn browser_hint(stdout: &[u8]) -> (String, Vec<usize>) {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("a report").to_string();
    let (command, link) = last
        .strip_prefix("To see it in the browser: run `")
        .and_then(|rest| rest.split_once("` and open http://127.0.0.1:3000/#/steps/"))
        .unwrap_or_else(|| panic!("the report ends with how to see it in the browser: {text}"));
    let positions = link.split('/').map(|p| p.parse().unwrap()).collect();
    (command.to_string(), positions)
}

#[test]
fn the_no_halt_counterexample_opens_at_its_two_coordinators() {
    let dir = TempDir::new("no-halt");
    let file = dir.0.join("no-halt.json");
    let file_arg = file.to_str().unwrap();
    let out = run(&[
        "check",
        "-n",
        "2",
        "--variant",
        "no-halt",
        "--trace-out",
        file_arg,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (command, hinted) = browser_hint(&out.stdout);
    assert_eq!(command, format!("bully-model explore --trace {file_arg}"));
    // Flags that agree with the trace are accepted.
    let positions = follow_the_link(&file, &["-n", "2", "--variant", "no-halt"]);
    assert_eq!(positions, hinted);
    let trace = TraceFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let last = trace.steps.last().unwrap();
    let summary = summary_of(&last.processes, last.in_flight);
    assert_eq!(
        summary.iter().filter(|l| l.contains("COORDINATOR")).count(),
        2,
        "{summary:?}"
    );

    // Without a trace file, the hint serves the same model by its flags, at the same link.
    let out = run(&["check", "-n", "2", "--variant", "no-halt"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (command, again) = browser_hint(&out.stdout);
    assert_eq!(command, "bully-model explore -n 2 --variant no-halt");
    assert_eq!(again, positions);
}

#[test]
fn an_epoch_order_counterexample_at_3_processes_opens_step_by_step() {
    let dir = TempDir::new("forget-promise");
    let file = dir.0.join("forget-promise.json");
    let out = run(&[
        "check",
        "-n",
        "3",
        "--variant",
        "forget-promise",
        "--no-liveness",
        "--threads",
        "2",
        "--trace-out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let trace = TraceFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(trace.property.as_ref().unwrap().name, "epoch order");
    assert!(trace.steps.len() >= 8, "{} steps", trace.steps.len());
    let positions = follow_the_link(&file, &[]);
    assert_eq!(browser_hint(&out.stdout).1, positions);
}

#[test]
fn a_symbolic_engines_counterexample_opens_in_the_explicit_model() {
    let dir = TempDir::new("symbolic");
    let file = dir.0.join("symbolic.json");
    let out = run(&[
        "check",
        "-n",
        "3",
        "--lose-storage",
        "--engine",
        "symbolic",
        "--no-liveness",
        "--threads",
        "2",
        "--trace-out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("(symbolic engine)"));
    let positions = follow_the_link(&file, &[]);
    assert_eq!(browser_hint(&out.stdout).1, positions);
}

#[test]
fn a_30_step_random_walk_opens_step_by_step() {
    let dir = TempDir::new("walk");
    let file = dir.0.join("walk.json");
    let out = run(&[
        "simulate",
        "-n",
        "5",
        "--seed",
        "2",
        "--depth",
        "30",
        "--runs",
        "1",
        "--trace-out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("in the browser"),
        "no violation, no hint: {text}"
    );
    let trace = TraceFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(trace.steps.len(), 30);
    follow_the_link(&file, &[]);
}

#[test]
fn a_wrong_trace_file_gets_one_line_and_exit_code_2() {
    let dir = TempDir::new("wrong");
    let good = dir.0.join("good.json");
    let out = run(&[
        "check",
        "-n",
        "2",
        "--variant",
        "no-halt",
        "--trace-out",
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = std::fs::read_to_string(&good).unwrap();
    let mut trace: serde_json::Value = serde_json::from_str(&text).unwrap();
    // A recorded state the model does not reach: process 0 waiting after step 2.
    let role = &mut trace["steps"][1]["processes"][0]["state"]["role"];
    assert_ne!(role["role"], "waiting", "{role}");
    *role = serde_json::json!({ "role": "waiting" });
    let tampered = serde_json::to_string(&trace).unwrap();
    let newer = text.replace("\"version\": 2", "\"version\": 99");
    assert_ne!(newer, text);
    let port = format!("127.0.0.1:{}", free_port());
    for (name, contents, flags, says) in [
        ("tampered", tampered.as_str(), vec![], "does not replay"),
        ("newer", newer.as_str(), vec![], "version"),
        (
            "other",
            "{\"format\": \"pcap\"}",
            vec![],
            "not a bully-model trace",
        ),
        ("broken", "{", vec![], "not JSON"),
        ("disagrees", text.as_str(), vec!["-n", "3"], "--processes 3"),
        (
            "flag",
            text.as_str(),
            vec!["--no-reduction"],
            "--no-reduction",
        ),
    ] {
        let file = dir.0.join(format!("{name}.json"));
        std::fs::write(&file, contents).unwrap();
        let mut args = vec![
            "explore",
            "--address",
            &port,
            "--trace",
            file.to_str().unwrap(),
        ];
        args.extend(flags);
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    let out = run(&[
        "explore",
        "--trace",
        dir.0.join("missing.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
