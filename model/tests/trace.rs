//! Traces out of the model (`check --trace-out`, `simulate --trace-out`): what they hold is
//! the model's own path, step by step, and it reads back to the same path.

use bully_model::check::{self, Options, Verdict};
use bully_model::simulate;
use bully_model::system::{Config, NetworkKind, Timing};
use bully_model::trace::{TraceAction, TraceFile, TraceProcess, TraceProperty};
use bully_model::{Epoch, Id, Members, Role, Storage, Variant};
use stateright::Model;
use std::process::Command;

fn coordinators(processes: &[TraceProcess]) -> Vec<usize> {
    processes
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            matches!(
                p,
                TraceProcess::Up {
                    state,
                    ..
                } if matches!(state.role, Role::Coordinator { .. })
            )
        })
        .map(|(i, _)| i)
        .collect()
}

/// The no-halt mutant's counterexample as a trace: it ends with two coordinators, names the
/// property, reads back, and replays in the model to the very same path.
#[test]
fn a_counterexample_trace_holds_the_path_and_reads_back() {
    let cfg = Config::new(2).variant(Variant::NoHalt);
    let report = check::run(
        &cfg,
        &Options {
            liveness: false,
            ..Options::default()
        },
    );
    let found = report.counterexample().expect("two coordinators");
    assert_eq!(found.name, "single coordinator");
    assert_eq!(found.verdict, Verdict::Violated);
    let model = cfg.clone().into_model();
    let path = found.path.clone().expect("a path");
    let trace = found
        .trace(&model, format!("bully-model check {}", cfg.cli_args()))
        .expect("a trace");
    assert_eq!(
        trace.property,
        Some(TraceProperty {
            name: "single coordinator".into(),
            kind: "always".into(),
            verdict: "violated".into(),
        })
    );
    assert_eq!(trace.steps.len(), path.actions.len());
    let last = trace.steps.last().expect("steps");
    assert_eq!(coordinators(&last.processes).len(), 2, "{last:?}");
    // Each step's processes are the model's after that step.
    for (step, state) in trace.steps.iter().zip(path.states(&model)) {
        assert_eq!(step.processes, TraceProcess::all(&state));
        assert_eq!(step.in_flight, state.network.len());
    }
    let text = serde_json::to_string(&trace).unwrap();
    let back = TraceFile::parse(&text).expect("reads back");
    assert_eq!(back, trace);
    assert_eq!(back.path(&model).expect("replays"), path);
}

/// A walk's trace replays in the model; a trace whose recorded state was tampered with does
/// not, and neither does another format or version.
#[test]
fn a_walk_trace_replays_and_a_tampered_one_is_refused() {
    let model = Config::new(3).into_model();
    let (path, _, violated) = simulate::walk(&model, 7, 200);
    assert_eq!(violated, None);
    assert!(path.actions.len() > 5, "{path:?}");
    assert!(
        path.actions
            .iter()
            .any(|a| matches!(TraceAction::of(a), TraceAction::Crash { .. })),
        "seed 7 crashes a process"
    );
    let trace = TraceFile::new(&model, &path, "test".into(), None);
    assert_eq!(trace.path(&model).expect("replays"), path);

    let mut tampered = trace.clone();
    let step = &mut tampered.steps[2];
    step.processes[0] = TraceProcess::Crashed {
        storage: Storage {
            promised: Epoch::none(),
            members: Members::new([Id::from(0)]),
            joined: true,
            starts: 1,
        },
    };
    let err = tampered.path(&model).unwrap_err();
    assert!(err.starts_with("step 3:"), "{err}");

    let text = serde_json::to_string(&trace).unwrap();
    let newer = text.replace("\"version\":2", "\"version\":3");
    assert!(TraceFile::parse(&newer).unwrap_err().contains("version"));
    assert!(TraceFile::parse("{}").unwrap_err().contains("not a"));
    assert!(TraceFile::parse("[").unwrap_err().contains("not JSON"));
}

/// The command line: `check --trace-out` exits 1 and writes the counterexample; without one
/// (the correct protocol) it writes nothing; `simulate --trace-out` writes the walk.
#[test]
fn trace_out_on_the_command_line() {
    let dir = std::env::temp_dir().join(format!("bully-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_bully-model");
    let t = dir.join("t.json");
    let out = Command::new(bin)
        .args(["check", "-n", "2", "--variant", "no-halt", "--trace-out"])
        .arg(&t)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let trace = TraceFile::parse(&std::fs::read_to_string(&t).unwrap()).unwrap();
    assert_eq!(trace.config.variant, Variant::NoHalt);
    assert_eq!(trace.command, "bully-model check -n 2 --variant no-halt");
    assert_eq!(trace.property.unwrap().name, "single coordinator");

    let none = dir.join("none.json");
    let out = Command::new(bin)
        .args(["check", "-n", "2", "--trace-out"])
        .arg(&none)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!none.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no counterexample"));

    let w = dir.join("w.json");
    let out = Command::new(bin)
        .args([
            "simulate",
            "-n",
            "3",
            "--seed",
            "7",
            "--runs",
            "1",
            "--trace-out",
        ])
        .arg(&w)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let walk = TraceFile::parse(&std::fs::read_to_string(&w).unwrap()).unwrap();
    let model = Config::new(3).into_model();
    let (path, _, _) = simulate::walk(&model, 7, 200);
    assert_eq!(walk.path(&model).unwrap(), path, "the walk seed 7 takes");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without Bully's timing assumption, or on a lossy network, the counterexample is a trace
/// too: it replays, and its last state violates the property it names.
#[test]
fn the_async_and_lossy_counterexamples_are_traces() {
    for cfg in [
        Config::new(3).timing(Timing::Async),
        Config::new(3).network(NetworkKind::Lossy),
    ] {
        let report = check::run(
            &cfg,
            &Options {
                liveness: false,
                ..Options::default()
            },
        );
        let found = report.counterexample().expect("a counterexample");
        let model = cfg.clone().into_model();
        let path = found.path.clone().unwrap();
        let trace = TraceFile::new(&model, &path, String::new(), None);
        assert_eq!(trace.path(&model).unwrap(), path, "{cfg}");
        let property = model
            .properties()
            .into_iter()
            .find(|p| p.name == found.name)
            .expect("a property of the model");
        assert!(
            !(property.condition)(&model, &path.last(&model)),
            "{cfg}: the trace ends in a state that violates {}",
            found.name
        );
    }
}
