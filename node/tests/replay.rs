//! `bully-node replay`: model traces reproduced on real node processes (127.0.0.1 only; the
//! replayer kills every node it started, also when it fails).

use bully_model::check::{self, Options};
use bully_model::simulate;
use bully_model::system::{Action, Config, NetworkKind, StartMode, Timing};
use bully_model::trace::{Path as ModelPath, TraceFile};
use bully_model::Variant;
use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bully-node");

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("bully-replay-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, trace: &TraceFile) -> PathBuf {
        let file = self.0.join(name);
        std::fs::write(&file, serde_json::to_string(trace).unwrap()).unwrap();
        file
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn replay(file: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("replay")
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first counterexample of `cfg` as a trace (safety only: the first liveness one with
/// [`counterexample_with_liveness`]).
fn counterexample(cfg: &Config) -> TraceFile {
    first_counterexample(cfg, false)
}

fn counterexample_with_liveness(cfg: &Config) -> TraceFile {
    first_counterexample(cfg, true)
}

fn first_counterexample(cfg: &Config, liveness: bool) -> TraceFile {
    let report = check::run(
        cfg,
        &Options {
            liveness,
            ..Options::default()
        },
    );
    let found = report.counterexample().expect("a counterexample");
    let model = cfg.clone().into_model();
    found
        .trace(&model, format!("bully-model check {}", cfg.cli_args()))
        .expect("a path")
}

/// The teacher's case: the no-halt mutant's two coordinators, on real processes; the same
/// trace with the verified handler diverges, and the output says where.
#[test]
fn the_no_halt_counterexample_makes_two_real_coordinators_and_the_correct_handler_diverges() {
    let dir = Scratch::new("nohalt");
    let file = dir.write(
        "t.json",
        &counterexample(&Config::new(2).variant(Variant::NoHalt)),
    );
    let (code, out, err) = replay(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("single coordinator VIOLATED on the real processes"),
        "{out}"
    );
    assert!(
        out.contains("node 0 (epoch 1.0), node 1 (epoch 2.1)"),
        "{out}"
    );

    let (code, out, err) = replay(&file, &["--variant", "correct"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("replay diverged"), "{out}");
    assert!(out.contains("model:") && out.contains("node 1:"), "{out}");
    assert!(err.contains("diverged"), "{err}");
}

/// Random walks of the correct model, with a crash and a recovery, replay exactly: N=3 and
/// N=4, both start modes, 50 walks each.
#[test]
fn random_walks_replay_exactly_on_real_nodes() {
    let dir = Scratch::new("walks");
    let mut crashes = 0;
    let mut recoveries = 0;
    for n in [3, 4] {
        for start in [StartMode::Full, StartMode::Join] {
            let model = Config::new(n).start(start).into_model();
            for seed in 0..50 {
                let (path, _, violated) = simulate::walk(&model, seed, 200);
                assert_eq!(violated, None);
                crashes += count(&path, |a| matches!(a, Action::Crash(_)));
                recoveries += count(&path, |a| matches!(a, Action::Recover(_)));
                let trace = TraceFile::new(&model, &path, format!("seed {seed}"), None);
                let file = dir.write("w.json", &trace);
                let (code, out, err) = replay(&file, &[]);
                assert_eq!(code, 0, "N={n} {start:?} seed {seed}:\n{out}{err}");
                assert!(out.contains("trace reproduced"), "{out}");
            }
        }
    }
    // The walks do crash and recover processes (200 walks).
    assert!(
        crashes > 100 && recoveries > 50,
        "{crashes} crashes, {recoveries} recoveries"
    );
}

fn count(path: &ModelPath, which: fn(&Action) -> bool) -> usize {
    path.actions.iter().filter(|a| which(a)).count()
}

/// Without Bully's assumptions (timeouts at any time; a lossy network) the counterexamples
/// replay too: the real processes end with two coordinators.
#[test]
fn the_async_and_lossy_counterexamples_replay() {
    let dir = Scratch::new("assumptions");
    for cfg in [
        Config::new(3).timing(Timing::Async),
        Config::new(3).network(NetworkKind::Lossy),
    ] {
        let file = dir.write("c.json", &counterexample(&cfg));
        let (code, out, err) = replay(&file, &[]);
        assert_eq!(code, 0, "{cfg}:\n{out}{err}");
        assert!(out.contains("single coordinator VIOLATED"), "{cfg}:\n{out}");
    }
}

/// What a lost data directory allows (`--lose-storage`), on real processes: the replayer
/// removes the node's data directory before restarting it. With full membership the restarted
/// coordinator takes office again at its old epoch; in join mode the first coordinator crowns
/// itself beside the one the group elected.
#[test]
fn the_lost_storage_counterexamples_replay() {
    let dir = Scratch::new("lost-storage");
    for (cfg, property) in [
        (Config::new(3).lose_storage(true), "epoch order"),
        (
            Config::new(3).start(StartMode::Join).lose_storage(true),
            "single coordinator",
        ),
    ] {
        let trace = counterexample(&cfg);
        assert_eq!(
            trace.property.as_ref().map(|p| p.name.as_str()),
            Some(property)
        );
        let file = dir.write("l.json", &trace);
        let (code, out, err) = replay(&file, &[]);
        assert_eq!(code, 0, "{cfg}:\n{out}{err}");
        assert!(
            out.contains(&format!("{property} VIOLATED on the real processes")),
            "{cfg}:\n{out}"
        );
    }
}

/// Every mutant's first counterexample at N=3 replays on real processes running that mutant,
/// and a safety counterexample's property is violated there too.
#[test]
fn every_mutants_counterexample_replays() {
    use clap::ValueEnum;
    let dir = Scratch::new("mutants");
    for &variant in Variant::value_variants() {
        if variant == Variant::Correct {
            continue;
        }
        let trace = counterexample_with_liveness(&Config::new(3).variant(variant));
        let property = trace.property.clone().expect("a property");
        let file = dir.write("m.json", &trace);
        let (code, out, err) = replay(&file, &[]);
        assert_eq!(code, 0, "{variant:?}:\n{out}{err}");
        let shown = if property.kind == "liveness" {
            "no fault-free execution settles".to_string()
        } else {
            format!("{} VIOLATED on the real processes", property.name)
        };
        assert!(out.contains(&shown), "{variant:?}:\n{out}");
    }
}

/// Bad input: a missing file, a file that is not a trace, another version: one line, exit 2.
#[test]
fn bad_traces_are_refused_in_one_line() {
    let dir = Scratch::new("bad");
    let missing = dir.0.join("missing.json");
    let not_a_trace = dir.0.join("x.json");
    std::fs::write(&not_a_trace, "{\"hello\": 1}").unwrap();
    let newer = dir.0.join("newer.json");
    let trace = counterexample(&Config::new(2).variant(Variant::NoHalt));
    let version = format!("\"version\":{}", bully_model::trace::VERSION);
    let text = serde_json::to_string(&trace)
        .unwrap()
        .replace(&version, "\"version\":99");
    std::fs::write(&newer, text).unwrap();
    for (file, says) in [
        (missing, "No such file"),
        (not_a_trace, "not a bully-model trace"),
        (newer, "version"),
    ] {
        let (code, out, err) = replay(&file, &[]);
        assert_eq!(code, 2, "{file:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
}
