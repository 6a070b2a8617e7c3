#!/usr/bin/env bash
# Two builds of bully-model side by side, one run at a time, each under /usr/bin/time, with
# stateright's paxos example as the yardstick of the session.
#
#   OLD_BIN=/path/to/old/bully-model NEW_BIN=target/release/bully-model \
#   PAXOS_BIN=/path/to/paxos bench/compare.sh > table.md
#
# Build an older commit with `git worktree add /tmp/old <rev>` and
# `CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p bully-model` there. Each row runs
# `check ARGS --engine symbolic --threads 1` (ENGINE overrides), stopped after LIMIT seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW=${NEW_BIN:-target/release/bully-model}
OLD=${OLD_BIN:?set OLD_BIN to the older bully-model}
LIMIT=${LIMIT:-600}
ENGINE=${ENGINE:-symbolic}
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }
echo "| \`check ...\` | build | result | unique states | search s | liveness s | wall s | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
row() { # label binary args...
  local label=$1 bin=$2; shift 2
  local out; out=$(mktemp)
  set +e
  timeout "$LIMIT" /usr/bin/time -f "TIME %e %M" "$bin" check "$@" --engine "$ENGINE" --threads 1 > "$out" 2>&1
  local code=$?
  set -e
  local result
  case $code in 0) result=ok;; 1) result=violation;; 3) result="memory budget";; 124) result="stopped at ${LIMIT} s";; *) result="exit $code";; esac
  local line; line=$(grep -E "unique states" "$out" | head -1 || true)
  local states search live wall rss
  states=$(echo "$line" | awk '{print $1}')
  search=$(echo "$line" | grep -oE "[0-9.]+s \(" | head -1 | tr -d 's (' || true)
  live=$(echo "$line" | grep -oE "liveness pass [0-9.]+" | awk '{print $3}' || true)
  wall=$(grep TIME "$out" | awk '{print $2}' || true)
  rss=$(grep TIME "$out" | awk '{printf "%d", $3/1024}' || true)
  echo "| \`$*\` | $label | $result | ${states:-} | ${search:-} | ${live:-} | ${wall:-} | ${rss:-} |"
  rm -f "$out"
}
for args in "-n 4" "-n 5 --crashes 0 --recoveries 0" "-n 5 --crashes 1 --recoveries 0" "-n 6 --crashes 0 --recoveries 0"; do
  # shellcheck disable=SC2086
  row new "$NEW" $args
  # shellcheck disable=SC2086
  row old "$OLD" $args
done
if [[ -n ${PAXOS_BIN:-} ]]; then
  out=$(mktemp)
  /usr/bin/time -f "TIME %e %M" "$PAXOS_BIN" check-bfs 3 > "$out" 2>&1 || true
  echo
  echo "Yardstick, same session: \`paxos check-bfs 3\`: $(grep -o 'unique=[0-9]*' "$out" | tail -1), $(grep TIME "$out" | awk '{print $2}') s wall"
  rm -f "$out"
fi
