#!/bin/bash
# The idle cost of a settled cluster's coordinator (64 nodes by default).
#
#   bench/idle.sh [BIN] [NODES]        # default: target/release/bully-node, 64 nodes
#
# Starts `BIN cluster --nodes NODES --heartbeat 100ms --timeout 300ms` on ports 7001..,
# waits 12 s for it to settle, and reports the coordinator's CPU over the next 10 s: the time
# summed over all its threads from /proc/PID/task/*/schedstat (nanoseconds), as a share of
# one core. The cluster stops by itself afterwards. Compare builds in one session, alternating
# runs: the machine is shared and the numbers move by a tenth of a point.
set -euo pipefail
BIN=${1:-target/release/bully-node}
N=${2:-64}
BASE=${BASE:-7001}
( sleep 28; echo quit ) | "$BIN" cluster --nodes "$N" --base-port "$BASE" \
    --heartbeat 100ms --timeout 300ms >/dev/null 2>&1 &
CLUSTER=$!
trap 'kill $CLUSTER 2>/dev/null || true' EXIT
sleep 12
PID=$(pgrep -f -- "--id $((BASE + N - 1)) " | head -1)
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; }
a=$(cpu_ns "$PID"); sleep 10; b=$(cpu_ns "$PID")
share=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b - a) / 1e8 }')
echo "coordinator $share % of a core over 10 s (load $(cut -d' ' -f1-3 /proc/loadavg))"
wait $CLUSTER
trap - EXIT
