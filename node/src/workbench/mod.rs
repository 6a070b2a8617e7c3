//! `bully-node workbench`: runs anyone's implementation of the course exercise under faults,
//! observed from the outside on the exercise's own wire, and judges it.
//!
//! [`args`] checks the command line; [`launcher`] starts and signals the nodes' processes;
//! [`observer`] sees the wire (announcements, requests to dead ports, heartbeat probes);
//! [`scenario`] forms each cluster and injects its faults; [`verdict`] judges what happened;
//! [`report`] and [`timeline`] show it. The guide page "Testing your exercise"
//! (docs/src/workbench.md) says what each verdict means.

pub mod args;
mod conformance;
mod launcher;
mod observer;
mod report;
mod scenario;
mod timeline;
mod verdict;

pub use args::{Scenario, WorkbenchArgs};

use crate::failure::Failure;
use args::{Draw, Settings};
use report::{Results, ScenarioResult};
use scenario::{Bench, Stopped};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Every port the run needs must be free before anything starts. Checked by binding it the
/// way the nodes will, with ZeroMQ (which allows a port that only has connections in
/// TIME_WAIT, as a plain bind does not).
fn check_ports(s: &Settings) -> Result<(), String> {
    let ctx = zmq::Context::new();
    for port in s.ports() {
        let bound = ctx.socket(zmq::REP).and_then(|sock| {
            sock.set_linger(0)?;
            sock.bind(&format!("tcp://127.0.0.1:{port}"))
        });
        if let Err(e) = bound {
            return Err(format!(
                "port {port} is not free ({e}); the workbench needs ports {}..={} (choose another --base-port)",
                s.observer_port,
                s.observer_port + s.nodes.len() as u16
            ));
        }
    }
    Ok(())
}

/// The directory for logs: `--report DIR`, else a temporary one (removed at the end).
fn work_dir(s: &Settings) -> Result<(PathBuf, bool), Failure> {
    let (dir, temporary) = match &s.report {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("bully-workbench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Usage(format!("--report {}: {e}", dir.display())))?;
    Ok((dir, temporary))
}

/// Runs one scenario on a fresh cluster and judges it.
fn run_one(
    s: &Settings,
    stop: &AtomicBool,
    exe: &Path,
    dir: PathBuf,
    scenario: Scenario,
    draw: Draw,
) -> Result<(ScenarioResult, String), Stopped> {
    let mut bench = Bench::new(s, stop, exe.to_path_buf(), dir, draw)?;
    bench.form()?;
    bench.inject(scenario)?;
    let trace = bench.finish(scenario)?;
    let (verdicts, times) = verdict::judge(&trace);
    let conformance = conformance::check(
        exe,
        &trace.step_logs,
        &trace.foreign,
        scenario == Scenario::PauseCoordinator,
    );
    let svg = timeline::svg(&trace, &verdicts);
    let mut result = ScenarioResult::new(scenario, verdicts, times, conformance);
    result.acts = trace.acts;
    result.seen = trace.seen;
    result.end_ms = trace.end;
    Ok((result, svg))
}

/// `bully-node workbench`: exit 0 when every verdict passes, 1 when one fails, 2 on a usage
/// error or an implementation that cannot be started.
pub fn main(a: WorkbenchArgs) -> Result<(), Failure> {
    let s = Settings::from_args(&a).map_err(Failure::Usage)?;
    check_ports(&s).map_err(Failure::Usage)?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Runtime(format!("cannot find this executable: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Failure::Runtime(format!("signal handler: {e}")))?;
    }
    let (dir, temporary) = work_dir(&s)?;
    let outcome = run_all(&s, &stop, &exe, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let results = match outcome {
        Ok(r) => r,
        Err(Stopped::Interrupted) => {
            return Err(Failure::Runtime("interrupted: every node stopped".into()))
        }
        Err(Stopped::CannotStart(m)) => {
            return Err(Failure::Usage(format!(
                "the implementation cannot be started: {m}"
            )))
        }
        Err(Stopped::Io(m)) => return Err(Failure::Runtime(m)),
    };
    if a.json {
        let text = serde_json::to_string_pretty(&results.summary()).expect("results are JSON");
        println!("{text}");
    } else {
        print!("{}", report::table(&results));
    }
    if results.passed {
        Ok(())
    } else {
        let failed = results.scenarios.iter().filter(|r| !r.passed).count();
        Err(Failure::Runtime(format!(
            "{failed} of {} scenarios failed",
            results.scenarios.len()
        )))
    }
}

fn run_all(s: &Settings, stop: &AtomicBool, exe: &Path, dir: &Path) -> Result<Results, Stopped> {
    let mut done = Vec::new();
    let mut svgs = Vec::new();
    for (i, &scenario) in s.scenarios.iter().enumerate() {
        let t0 = Instant::now();
        let sub = dir.join(format!("{}-{}", i + 1, scenario.name()));
        let draw = Draw::new(s.seed.wrapping_add(i as u64));
        let (result, svg) = run_one(s, stop, exe, sub, scenario, draw)?;
        eprintln!(
            "workbench: {} {} ({:.1} s)",
            scenario.name(),
            if result.passed { "passed" } else { "FAILED" },
            t0.elapsed().as_secs_f64()
        );
        done.push(result);
        svgs.push((scenario, svg));
    }
    let results = Results::new(s, done);
    if s.report.is_some() {
        report::write_dir(dir, &results, &svgs).map_err(Stopped::Io)?;
    }
    Ok(results)
}
