#!/usr/bin/env bash
# Model-checker benchmark: runs `bully-model check` for a set of configurations at 1 and 2
# threads under /usr/bin/time -v, and writes a markdown table (bench/results/model.md) plus the
# raw JSON/stderr of every run (bench/results/model/).
#
#   bench/model.sh            # the full set (≈ 10 min on 2 cores)
#   bench/model.sh --smoke    # N=2 only (a few seconds)
#   bench/model.sh --beyond   # N=4 and N=5 full with 1 crash / 1 recovery, 2 threads, cut at
#                             # MODEL_TIMEOUT: reports the partial state count
#
# Env: BULLY_MODEL_BIN (the binary; default target/release, built if missing), BENCH_OUT (results
# directory, default bench/results; the smoke test in `cargo test` writes to a temporary one),
# MODEL_TIMEOUT (s, default 180) bounds each run; MODEL_MAX_RSS_MIB (default 7168) kills a
# run whose checker holds more resident memory; THREADS (default "1 2").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BULLY_MODEL_BIN:-$ROOT/target/release/bully-model}
OUT=${BENCH_OUT:-$ROOT/bench/results}
RAW=$OUT/model
LIMIT=${MODEL_TIMEOUT:-180}
MAXRSS=${MODEL_MAX_RSS_MIB:-7168}
THREADS=${THREADS:-"1 2"}
SMOKE=0
BEYOND=0
[[ ${1:-} == --smoke ]] && SMOKE=1
[[ ${1:-} == --beyond ]] && BEYOND=1

# Children are killed on exit (timeout runs each check in its own process group).
pids=()
cleanup() { for p in "${pids[@]:-}"; do [[ -n $p ]] && kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time: apt-get update && apt-get install -y time" >&2; exit 2; }
[[ -x $BIN ]] || cargo build --release -p bully-model
mkdir -p "$RAW"

# n start crashes recoveries
if ((SMOKE)); then
  CONFIGS=("2 full 1 1" "2 join 1 1")
  TAG=smoke
elif ((BEYOND)); then
  # beyond exhaustive reach in $LIMIT s: the table shows the partial count of the last progress line
  CONFIGS=("4 full 1 1" "5 full 1 1")
  THREADS=${THREADS_BEYOND:-2}
  TAG=beyond
else
  CONFIGS=("2 full 1 1" "2 join 1 1" "3 full 1 1" "3 join 1 1" "4 full 1 0" "4 full 0 0")
  TAG=full
fi

TSV=$RAW/$TAG.tsv
: > "$TSV"
for cfg in "${CONFIGS[@]}"; do
  read -r n start c r <<<"$cfg"
  for t in $THREADS; do
    name="n${n}-${start}-c${c}-r${r}-t${t}"
    echo "== $name (limit ${LIMIT}s, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    load=$(cut -d' ' -f1 /proc/loadavg)
    set +e
    /usr/bin/time -v -o "$RAW/$name.time" \
      timeout -k 5 "$LIMIT" "$BIN" check -n "$n" --crashes "$c" --recoveries "$r" \
      --start "$start" --threads "$t" --json >"$RAW/$name.json" 2>"$RAW/$name.err" &
    tpid=$!
    pids+=($tpid)
    # RSS watchdog: SIGKILL the checker once it holds more than MODEL_MAX_RSS_MIB
    capped=""
    while kill -0 "$tpid" 2>/dev/null; do
      sleep 0.5
      mpid=$(pgrep -P "$(pgrep -P "$tpid" | head -1)" 2>/dev/null | head -1 || true)
      [[ -n $mpid ]] || continue
      pids+=($mpid)
      rss=$(awk '/^VmRSS:/ {print int($2/1024)}' "/proc/$mpid/status" 2>/dev/null || echo 0)
      if ((rss > MAXRSS)); then
        capped="$rss"
        kill -9 "$mpid" 2>/dev/null || true
        echo "memory cap: killed at ${rss} MiB RSS" >>"$RAW/$name.err"
        break
      fi
    done
    wait "$tpid"
    rc=$?
    [[ -n $capped ]] && rc="rss-cap-${capped}MiB"
    set -e
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$start" "$c" "$r" "$t" "$rc" "$load" >>"$TSV"
  done
done

python3 - "$TSV" "$RAW" "$LIMIT" "$BIN" >"$OUT/model-$TAG.md" <<'PY'
import json, re, sys, os
tsv, raw, limit, binp = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
def timev(path):
    d = {}
    for line in open(path):
        line = line.strip()
        if ":" in line:
            k, v = line.rsplit(":", 1) if line.startswith("Elapsed") else line.split(":", 1)
            d[k.strip()] = v.strip()
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:31.20"
    for line in open(path):
        if "Elapsed (wall clock)" in line:
            w = line.strip().split("): ")[1]
            parts = [float(x) for x in w.split(":")]
            secs = 0.0
            for p in parts: secs = secs * 60 + p
            d["wall"] = secs
        if "Maximum resident set size" in line:
            d["rss_kb"] = int(line.split(":")[1])
    return d
res = {}
print("| config | threads | result | unique states | total states | max depth | safety s | liveness s | wall s (time -v) | unique states/s | peak RSS MiB | bytes/unique state | speed-up 2t (safety s) | load avg 1m |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name, n, start, c, r, t, rc, load in rows:
    tv = timev(os.path.join(raw, name + ".time"))
    rss = tv.get("rss_kb", 0) * 1024
    cfg = f"N={n} {start}, {c} crash / {r} recovery"
    try:
        rep = json.load(open(os.path.join(raw, name + ".json")))
    except Exception:
        rep = None
    if rep is None:
        prog = [l for l in open(os.path.join(raw, name + ".err")) if "unique states" in l]
        last = prog[-1].strip() if prog else "no progress line"
        m = re.search(r"([0-9]+) unique states, ([0-9]+) total, depth ([0-9]+), ([0-9]+)s", last)
        status = f"did not finish within {limit} s (rc {rc})"
        if rc.startswith("rss-cap"):
            status = f"stopped by the memory cap at {rc[8:]} RSS (within {limit} s)"
        if m:
            u, tot, dep, s = map(int, m.groups())
            capped = rc.startswith("rss-cap")
            print(f"| {cfg} | {t} | {status} | ≥ {u:,} (progress line at {s} s) | ≥ {tot:,} | ≥ {dep} | {'– (unfinished)' if capped else f'> {limit}'} | – | {tv.get('wall',0):.2f} | {u/s if s else 0:,.0f} (partial) | {rss/2**20:,.0f} | ≤ {rss/u if u else 0:,.0f} (RSS at the stop / last count; includes the BFS queue) | – | {load} |")
        else:
            print(f"| {cfg} | {t} | {status} | – | – | – | – | – | {tv.get('wall',0):.2f} | – | {rss/2**20:,.0f} | – | – | {load} |")
        continue
    ok = "ok" if rc == "0" else f"FAILED (rc {rc})"
    u, tot = rep["unique_states"], rep["total_states"]
    res[(n, start, c, r, t)] = rep["seconds"]
    sp = ""
    if t == "2" and (n, start, c, r, "1") in res:
        sp = f"{res[(n, start, c, r, '1')] / rep['seconds']:.2f}×"
    live = rep.get("liveness_seconds")
    print(f"| {cfg} | {t} | {ok} | {u:,} | {tot:,} | {rep['max_depth']} | {rep['seconds']:.2f} | {live if live is None else f'{live:.2f}'} | {tv.get('wall',0):.2f} | {rep['states_per_second']:,.0f} | {rss/2**20:,.0f} | {rss/u:,.0f} | {sp} | {load} |")
PY
cat "$OUT/model-$TAG.md"
