#!/usr/bin/env bash
# The symbolic engine on one thread and on two, side by side in one session: each
# configuration is checked with `--threads 1`, then `--threads 2` (interleaved, so that both
# see the same machine), each under /usr/bin/time -v. With OLD_BIN, another build (say, of an
# earlier commit) runs too, right before them, with `--threads 1`. With EXPLICIT=1 the explicit
# engine runs as well; with PAXOS_BIN, stateright's paxos example runs last as the yardstick.
#
#   bench/engines.sh                                  # writes bench/results/engines.md
#   OLD_BIN=/path/to/old/bully-model CONFIGS="-n 5|-n 4 --start join" bench/engines.sh
#
# CONFIGS lists the configurations, separated by `|`. The table has the wall time, the peak
# resident size, and the diagram store's nodes: the most it held during the search (summed
# over the workers) and what the reached sets hold at its end. A run that exceeds
# STEP_TIMEOUT seconds (default 900) is cut off and says so. Run it on an otherwise idle
# machine: the load average at the start of each run is in the last column.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BULLY_MODEL_BIN:-$ROOT/target/release/bully-model}
OLD=${OLD_BIN:-}
OUT=${BENCH_OUT:-$ROOT/bench/results}
LIMIT=${STEP_TIMEOUT:-900}
CONFIGS=${CONFIGS:-"-n 4|-n 4 --start join|-n 5|-n 6"}
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }
[[ -x $BIN ]] || cargo build --release -p bully-model
mkdir -p "$OUT/engines"
MD=$OUT/engines.md
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores."
  echo
  echo "| \`bully-model check ...\` | engine | result | unique states | wall s | peak RSS MiB | peak nodes | final nodes | load |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$MD"
row() { # label binary engine threads args...
  local label=$1 bin=$2 engine=$3 threads=$4; shift 4
  local name; name=$(echo "$label $*" | tr -c 'a-zA-Z0-9\n' '_')
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  set +e
  timeout "$LIMIT" /usr/bin/time -v -o "$OUT/engines/$name.time" "$bin" check "$@" \
    --engine "$engine" --threads "$threads" > "$OUT/engines/$name.out" 2> "$OUT/engines/$name.err"
  local code=$?
  set -e
  local wall rss states result nodes peak last
  # A run cut off by the timeout leaves no timing: its cells stay empty.
  wall=$( (grep "Elapsed (wall" "$OUT/engines/$name.time" || true) | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else if (NF==2) print $1*60+$2 }')
  rss=$( (grep "Maximum resident" "$OUT/engines/$name.time" || true) | awk '{printf "%d", $NF/1024}')
  states=$(python3 -c "import re,sys; m=re.search(r'^(\d+) unique states', open(sys.argv[1]).read(), re.M); print(f'{int(m[1]):,}' if m else '?')" "$OUT/engines/$name.out")
  case $code in 0) result=ok;; 1) result=violation;; 3) result="memory budget";; 124) result="timeout ${LIMIT}s";; *) result="exit $code";; esac
  nodes=$( (grep -o "diagram nodes: [0-9]* at most, [0-9]* at the end" "$OUT/engines/$name.err" || true) | tail -1)
  peak=$(echo "$nodes" | awk '{print $3}')
  last=$(echo "$nodes" | awk '{print $6}')
  echo "| \`$*\` | $label | $result | $states | $wall | $rss | ${peak:-} | ${last:-} | $load |" >> "$MD"
  echo "$label $*: $result, $states states, ${wall}s, ${rss} MiB" >&2
}
IFS='|' read -r -a configs <<< "$CONFIGS"
for args in "${configs[@]}"; do
  if [[ -n $OLD ]]; then
    # shellcheck disable=SC2086
    row "old build, 1 thread" "$OLD" symbolic 1 $args
  fi
  # shellcheck disable=SC2086
  row "symbolic, 1 thread" "$BIN" symbolic 1 $args
  # shellcheck disable=SC2086
  row "symbolic, 2 threads" "$BIN" symbolic 2 $args
  if [[ -n ${EXPLICIT:-} ]]; then
    # shellcheck disable=SC2086
    row "explicit, 2 threads" "$BIN" explicit 2 $args
  fi
done
if [[ -n ${PAXOS_BIN:-} ]]; then
  # stateright's paxos example as the session's yardstick (its unique states per second).
  /usr/bin/time -v -o "$OUT/engines/paxos.time" "$PAXOS_BIN" check-bfs 3 > "$OUT/engines/paxos.out" 2>&1 || true
  echo >> "$MD"
  echo "Yardstick, same session: \`paxos check-bfs 3\`: $( (grep -o 'unique=[0-9]*' "$OUT/engines/paxos.out" || true) | tail -1), $(grep "Elapsed (wall" "$OUT/engines/paxos.time" | awk '{print $NF}') wall" >> "$MD"
fi
echo "wrote $MD" >&2
