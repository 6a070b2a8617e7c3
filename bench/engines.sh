#!/usr/bin/env bash
# The two engines side by side: the same configurations checked explicitly and symbolically
# (`check --engine explicit|symbolic`), each under /usr/bin/time -v, with stateright's paxos
# example as the yardstick of the session (its unique states per second).
#
#   PAXOS_BIN=/path/to/paxos bench/engines.sh      # writes bench/results/engines.md
#
# The paxos yardstick runs last; its line follows the table it measures the session of.
# THREADS (default 1) is given to the explicit engine; the symbolic engine is single-threaded,
# so the default compares one core against one core.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BULLY_MODEL_BIN:-$ROOT/target/release/bully-model}
PAXOS=${PAXOS_BIN:-}
OUT=${BENCH_OUT:-$ROOT/bench/results}
THREADS=${THREADS:-1}
LIMIT=${STEP_TIMEOUT:-900}
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }
[[ -x $BIN ]] || cargo build --release -p bully-model
mkdir -p "$OUT/engines"
MD=$OUT/engines.md
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores; explicit engine with --threads $THREADS."
  echo
  echo "| configuration | engine | result | unique states | process-state combinations | wall s | peak RSS MiB | load |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$MD"
row() { # engine args...
  local engine=$1; shift
  local name; name=$(echo "$engine $*" | tr -c 'a-zA-Z0-9\n' '_')
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  set +e
  timeout "$LIMIT" /usr/bin/time -v -o "$OUT/engines/$name.time" "$BIN" check "$@" \
    --engine "$engine" --threads "$THREADS" --json > "$OUT/engines/$name.json" 2> "$OUT/engines/$name.err"
  local code=$?
  set -e
  local wall rss states result
  wall=$(grep "Elapsed (wall" "$OUT/engines/$name.time" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident" "$OUT/engines/$name.time" | awk '{printf "%d", $NF/1024}')
  states=$(python3 -c "import json,sys; print(f'{json.load(open(sys.argv[1]))[\"unique_states\"]:,}')" "$OUT/engines/$name.json" 2>/dev/null || echo "?")
  case $code in 0) result=ok;; 1) result=violation;; 3) result="memory budget";; 124) result="timeout ${LIMIT}s";; *) result="exit $code";; esac
  local combos; combos=$( (grep -o "[0-9]* process-state combinations" "$OUT/engines/$name.err" || true) | tail -1 | cut -d' ' -f1)
  echo "| \`check $*\` | $engine | $result | $states | ${combos:-} | $wall | $rss | $load |" >> "$MD"
  echo "$engine $*: $result, $states states, ${wall}s, ${rss} MiB" >&2
}
for args in "-n 3" "-n 4 --crashes 0 --recoveries 0" "-n 4 --crashes 1 --recoveries 0" "-n 4" "-n 5 --crashes 0 --recoveries 0"; do
  # shellcheck disable=SC2086
  row explicit $args
  # shellcheck disable=SC2086
  row symbolic $args
done
if [[ -n $PAXOS ]]; then
  /usr/bin/time -v -o "$OUT/engines/paxos.time" "$PAXOS" check-bfs 3 > "$OUT/engines/paxos.out" 2>&1 || true
  echo >> "$MD"
  echo "Yardstick, same session: \`paxos check-bfs 3\`: $( (grep -o 'unique=[0-9]*' "$OUT/engines/paxos.out" || true) | tail -1), $(grep "Elapsed (wall" "$OUT/engines/paxos.time" | awk '{print $NF}') wall" >> "$MD"
fi
echo "wrote $MD" >&2
