//! The failover benchmark's smoke mode runs here so the benchmark cannot rot: it must start a
//! cluster, kill its coordinator, time the failover and write its table and plot.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn failover_benchmark_smoke_mode_writes_its_table_and_plot() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: bench/failover.sh needs python3");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("bully-bench-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // The script's driver kills its nodes itself and the nodes die with it (PDEATHSIG).
    let run = Command::new("bash")
        .arg(root.join("bench/failover.sh"))
        .arg("--smoke")
        .env("BULLY_NODE_BIN", env!("CARGO_BIN_EXE_bully-node"))
        .env("BENCH_OUT", &out)
        .output()
        .expect("bash runs");
    let table = std::fs::read_to_string(out.join("failover-smoke.md")).unwrap_or_default();
    let svg = std::fs::read_to_string(out.join("failover-smoke.svg")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        run.status.success(),
        "bench/failover.sh --smoke failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The failover row: 3 nodes, 2 trials, a median no larger than a generous multiple of the
    // bound (the bound check proper is the benchmark's job; this only proves the pipeline).
    let row = table
        .lines()
        .find(|l| l.starts_with("| 3 | 100 / 300 | 2 | ") && l.contains("700"))
        .unwrap_or_else(|| panic!("no failover row in:\n{table}"));
    let median: f64 = row
        .split('|')
        .nth(4)
        .unwrap()
        .trim()
        .parse()
        .expect("median");
    assert!(median > 0.0, "median {median} in {row}");
    assert!(table.contains("Messages per election"), "{table}");
    assert!(table.contains("Idle cost"), "{table}");
    assert!(svg.contains("<svg"), "no plot written");
}
