//! The model benchmark's smoke mode runs here so the benchmark script cannot rot: it must run
//! the checker, parse its JSON and write the results table.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn model_benchmark_smoke_mode_writes_its_table() {
    if !std::path::Path::new("/usr/bin/time").exists() {
        eprintln!("SKIPPED: bench/model.sh needs /usr/bin/time (apt-get install time)");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: bench/model.sh needs python3 to write its table");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("bully-bench-model-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new("bash")
        .arg(root.join("bench/model.sh"))
        .arg("--smoke")
        .env("BULLY_MODEL_BIN", env!("CARGO_BIN_EXE_bully-model"))
        .env("BENCH_OUT", &out)
        .output()
        .expect("bash runs");
    let table = std::fs::read_to_string(out.join("model-smoke.md")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        run.status.success(),
        "bench/model.sh --smoke failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Both smoke configurations (N=2 full and join) at 1 and 2 threads, each checked OK with a
    // state count.
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| N=2")).collect();
    assert_eq!(rows.len(), 4, "expected 4 rows in:\n{table}");
    for row in rows {
        assert!(row.contains("| ok |"), "a smoke run failed: {row}");
        let unique: String = row.split('|').nth(4).unwrap_or("").trim().replace(',', "");
        assert!(
            unique.parse::<u64>().is_ok_and(|u| u > 1),
            "no state count in {row}"
        );
    }
}
