#!/usr/bin/env bash
# The exhaustive check's scale, step by step: the same configurations checked by the model as it
# was before each step (an earlier build, given as BULLY_MODEL_BEFORE) and as it is now, with
# unordered and with FIFO channels, beside stateright's own paxos example as a yardstick run in
# the same session (states per second are compared as ratios to it, since the machine is shared).
#
#   BULLY_MODEL_BEFORE=/path/to/old/bully-model bench/steps.sh    # writes bench/results/steps.md
#   PAXOS_BIN=/path/to/paxos ...                                   # stateright's examples/paxos.rs
#
# Each run: `check ... --threads 2 --json --max-memory $MAX_MEMORY` under /usr/bin/time -v and
# `timeout $STEP_TIMEOUT`. A run stopped by its memory budget (exit 3) or the timeout shows the
# states it had seen.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NOW=${BULLY_MODEL_BIN:-$ROOT/target/release/bully-model}
BEFORE=${BULLY_MODEL_BEFORE:-}
PAXOS=${PAXOS_BIN:-}
OUT=${BENCH_OUT:-$ROOT/bench/results}
RAW=$OUT/steps
LIMIT=${STEP_TIMEOUT:-600}
MAX_MEMORY=${MAX_MEMORY:-8GiB}
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }
[[ -x $NOW ]] || cargo build --release -p bully-model
mkdir -p "$RAW"
TSV=$RAW/runs.tsv
: > "$TSV"

run() { # label binary args...
  local label=$1 bin=$2; shift 2
  local name
  name=$(echo "$label $*" | tr -c 'a-zA-Z0-9\n' '_')
  echo "== $label: check $* (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  set +e
  timeout "$LIMIT" /usr/bin/time -v -o "$RAW/$name.time" \
    "$bin" check "$@" --threads 2 --json --max-memory "$MAX_MEMORY" \
    > "$RAW/$name.json" 2> "$RAW/$name.err"
  local code=$?
  set -e
  echo -e "$label\t$*\t$code\t$RAW/$name.json\t$RAW/$name.time\t$RAW/$name.err\t$(cut -d' ' -f1 /proc/loadavg)" >> "$TSV"
}

if [[ -n $PAXOS ]]; then
  echo "== paxos check-bfs 3 (yardstick)" >&2
  /usr/bin/time -v -o "$RAW/paxos.time" "$PAXOS" check-bfs 3 > "$RAW/paxos.out" 2>&1 || true
fi

CONFIGS=(
  "-n 3"
  "-n 3 --start join"
  "-n 4 --crashes 0 --recoveries 0"
  "-n 4 --crashes 1 --recoveries 0"
  "-n 4"
  "-n 5 --crashes 0 --recoveries 0"
  "-n 5"
)
for cfg in "${CONFIGS[@]}"; do
  # shellcheck disable=SC2086
  {
    [[ -n $BEFORE ]] && run "before: ActorModel state, unordered" "$BEFORE" $cfg
    run "compact state, unordered channels" "$NOW" $cfg --channels unordered
    run "compact state, FIFO channels (default)" "$NOW" $cfg
  }
done

python3 - "$TSV" "$RAW" "$OUT/steps.md" <<'EOF'
import json, re, sys
tsv, raw, out = sys.argv[1:]
def rss_mib(path):
    for l in open(path):
        if "Maximum resident" in l:
            return int(l.split(":")[1]) / 1024
    return float("nan")
def wall(path):
    for l in open(path):
        if "Elapsed (wall clock)" in l:
            t = l.rsplit(" ", 1)[1].strip().split(":")
            return sum(float(x) * 60 ** i for i, x in enumerate(reversed(t)))
    return float("nan")
paxos = None
try:
    m = re.search(r"Done\. states=(\d+), unique=(\d+), depth=\d+, sec=(\d+)", open(f"{raw}/paxos.out").read())
    paxos = (int(m.group(2)), wall(f"{raw}/paxos.time"))
except Exception:
    pass
lines = ["| configuration | model | result | unique states | safety s | liveness s | wall s | peak RSS MiB | unique states/s | ÷ paxos states/s | load |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for row in open(tsv):
    label, args, code, js, tm, err, load = row.rstrip("\n").split("\t")
    code = int(code)
    try:
        r = json.load(open(js))
        states, safety = r["unique_states"], r["seconds"]
        live = r.get("liveness_seconds") or 0
        result = {0: "ok", 1: "violation", 3: "memory budget"}.get(code, f"exit {code}")
    except Exception:
        # killed by the timeout: the last progress line
        prog = [l for l in open(err) if "unique states" in l]
        states = int(prog[-1].split()[1]) if prog else 0
        safety, live, result = float("nan"), float("nan"), f"timeout (exit {code})"
    rate = states / safety if safety == safety and safety > 0 else float("nan")
    ratio = f"{rate / (paxos[0] / paxos[1]):.2f}" if paxos and rate == rate else ""
    prefix = "≥ " if result != "ok" else ""
    lines.append(f"| `check {args}` | {label} | {result} | {prefix}{states:,} | {safety:.1f} | {live:.1f} | {wall(tm):.1f} | {rss_mib(tm):,.0f} | {rate:,.0f} | {ratio} | {load} |")
if paxos:
    lines.append("")
    lines.append(f"Yardstick, same session: stateright's `paxos check-bfs 3`: {paxos[0]:,} unique states in {paxos[1]:.1f} s wall ({paxos[0]/paxos[1]:,.0f} unique states/s), peak {rss_mib(raw + '/paxos.time'):,.0f} MiB.")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
