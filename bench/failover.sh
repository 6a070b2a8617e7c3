#!/usr/bin/env bash
# Node failover benchmark: kill -9 the coordinator, time until every survivor names the new one.
# Raw JSON per configuration in bench/results/failover/; the tables (bench/results/failover.md)
# and the plot (bench/results/failover.svg) are rebuilt from every configuration's JSON there.
#
#   bench/failover.sh                 # n5-100ms n5-500ms n16-100ms (20 trials each)
#   bench/failover.sh n64-100ms n5-5s # only these configurations
#   bench/failover.sh --smoke         # 3 nodes, 100ms/300ms, 2 trials (writes *-smoke.*)
#
# Configurations: n5-100ms (5 nodes, 100ms/300ms, + 10 s idle cost), n5-500ms (defaults),
# n16-100ms, n64-100ms (+ 10 s idle cost), n5-5s (the exercise's 5s/5s), and n5-best, n16-best,
# n64-best (100ms/300ms, Bully's best case: only the second-highest node detects the crash).
# Env: BULLY_NODE_BIN (the binary; default target/release, built if missing), BENCH_OUT (results
# directory, default bench/results; the smoke test in `cargo test` writes to a temporary one),
# TRIALS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BULLY_NODE_BIN:-$ROOT/target/release/bully-node}
OUT=${BENCH_OUT:-$ROOT/bench/results}
RAW=$OUT/failover
TRIALS=${TRIALS:-20}
[[ -x $BIN ]] || cargo build --release -p bully-node
mkdir -p "$RAW"
python3 -c 'import zmq' 2>/dev/null || echo "note: no pyzmq, polling with 'bully-node status --json' (slower)" >&2

# The driver kills its nodes itself (and they carry PR_SET_PDEATHSIG); this trap is the backstop.
drivers=()
cleanup() {
  for p in "${drivers[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${drivers[@]:-}"; do [[ -n $p ]] && kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

run() { # tag nodes heartbeat timeout trials idle-seconds [driver options]
  local tag=$1 n=$2 hb=$3 to=$4 trials=$5 idle=$6
  shift 6
  echo "== $tag: $n nodes, $hb/$to, $trials trials (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  python3 "$ROOT/bench/failover.py" --bin "$BIN" --nodes "$n" --heartbeat "$hb" --timeout "$to" \
    --trials "$trials" --idle "$idle" --out "$RAW/$tag.json" "$@" &
  drivers+=($!)
  wait $!
}

ORDER=(n5-100ms n5-500ms n5-5s n16-100ms n64-100ms n5-best n16-best n64-best)
config() {
  case $1 in
    n5-100ms)  run n5-100ms 5 100ms 300ms "$TRIALS" 10 ;;
    n5-500ms)  run n5-500ms 5 500ms 1500ms "$TRIALS" 0 ;;
    n5-5s)     run n5-5s 5 5s 5s "$TRIALS" 0 ;;
    n16-100ms) run n16-100ms 16 100ms 300ms "$TRIALS" 0 ;;
    n64-100ms) run n64-100ms 64 100ms 300ms "$TRIALS" 10 ;;
    # Bully's best case: only the second-highest notices (the others' timeout is 10 s)
    n5-best)   run n5-best 5 100ms 300ms "$TRIALS" 0 --best-case ;;
    n16-best)  run n16-best 16 100ms 300ms "$TRIALS" 0 --best-case ;;
    n64-best)  run n64-best 64 100ms 300ms "$TRIALS" 0 --best-case ;;
    *) echo "unknown configuration $1 (one of ${ORDER[*]})" >&2; exit 2 ;;
  esac
}

if [[ ${1:-} == --smoke ]]; then
  run smoke 3 100ms 300ms 2 1
  python3 "$ROOT/bench/report.py" "$OUT/failover-smoke.md" "$OUT/failover-smoke.svg" "$RAW/smoke.json"
  cat "$OUT/failover-smoke.md"
  exit 0
fi
if (($#)); then for c in "$@"; do config "$c"; done
else for c in n5-100ms n5-500ms n16-100ms; do config "$c"; done; fi

FILES=()
for c in "${ORDER[@]}"; do [[ -f $RAW/$c.json ]] && FILES+=("$RAW/$c.json"); done
python3 "$ROOT/bench/report.py" "$OUT/failover.md" "$OUT/failover.svg" "${FILES[@]}"
cat "$OUT/failover.md"
