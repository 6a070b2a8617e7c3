#!/usr/bin/env python3
"""Node failover benchmark for bully-node.

Starts N `bully-node run` processes on 127.0.0.1 (full membership, IDs = ports), waits until
every node names the highest as coordinator, then per trial: waits a random phase in [0, h),
kill -9 the coordinator, polls every survivor's status (the `bully-node status --json` request,
sent over a ZeroMQ REQ socket with pyzmq, or by running `bully-node status --json` when pyzmq is
missing) until all name the same new coordinator at the same epoch, and records

  * failover time = max over survivors of `epoch_since_unix_ms` - kill time (node clocks = the
    driver's clock: one machine), and the poll-observed time as a cross-check;
  * protocol messages sent during the election (survivors' `messages.sent` deltas, all types but
    heartbeat / heartbeat_ack), and which survivors' heartbeat timer fired (who noticed);

then restarts the killed node (same data dir), waits until it is coordinator again, next trial.
Results go to JSON; report.py turns them into markdown and SVG.
"""
import argparse, ctypes, json, os, random, signal, socket, subprocess, sys, tempfile, time, shutil

try:
    import zmq
except ImportError:  # fall back on the CLI
    zmq = None

LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
PROCS = {}  # id -> Popen


def pdeathsig():
    LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no node outlives the driver


def kill_all():
    for p in list(PROCS.values()):
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
    for p in list(PROCS.values()):
        try:
            p.wait(timeout=5)
        except Exception:
            pass


def free_ports(n):
    socks, ports = [], []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return sorted(ports)


class Status:
    def __init__(self, binp):
        self.binp = binp
        self.ctx = zmq.Context() if zmq else None
        self.socks = {}
        self.nonce = 0

    def _sock(self, port):
        s = self.socks.get(port)
        if s is None:
            s = self.ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVTIMEO, 1000)
            s.setsockopt(zmq.SNDTIMEO, 1000)
            s.connect(f"tcp://127.0.0.1:{port}")
            self.socks[port] = s
        return s

    def get(self, port):
        if self.ctx is None:
            r = subprocess.run([self.binp, "status", str(port), "--json", "--timeout", "1s"],
                               capture_output=True, text=True)
            return json.loads(r.stdout) if r.returncode == 0 else None
        self.nonce += 1
        s = self._sock(port)
        try:
            s.send_string(json.dumps({"v": 2, "request": "status", "nonce": self.nonce}))
            while True:
                rep = json.loads(s.recv())
                if rep.get("nonce") == self.nonce:
                    return rep["status"]
        except zmq.error.Again:
            s.close()
            self.socks.pop(port, None)
            return None

    def drop(self, port):
        s = self.socks.pop(port, None)
        if s is not None:
            s.close()


def node_timeout(port, ports, args):
    """--best-case: only the second-highest node detects failures at --timeout; the others wait
    --others-timeout, so the second-highest is the only one to notice a dead coordinator."""
    if args.best_case and port != sorted(ports)[-2]:
        return args.others_timeout
    return args.timeout


def start_node(binp, port, ports, args, datadir, logdir):
    cmd = [binp, "run", "--id", str(port), "--listen", f"tcp://127.0.0.1:{port}",
           "--data-dir", datadir, "--heartbeat", args.heartbeat, "--timeout", node_timeout(port, ports, args)]
    for p in ports:
        if p != port:
            cmd += ["--peer", f"{p}=tcp://127.0.0.1:{p}"]
    log = open(os.path.join(logdir, f"{port}.log"), "ab")
    PROCS[port] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=log, preexec_fn=pdeathsig)


def agreed(st, alive, want=None, exclude=None):
    """All alive nodes report the same coordinator and epoch (want: that coordinator)."""
    ss = []
    for p in alive:
        s = st.get(p)
        if s is None:
            return None
        ss.append(s)
    coords = {s.get("coordinator") for s in ss}
    epochs = {json.dumps(s.get("epoch"), sort_keys=True) for s in ss}
    if len(coords) != 1 or len(epochs) != 1:
        return None
    c = coords.pop()
    if c is None or (want is not None and c != want) or (exclude is not None and c == exclude):
        return None
    return ss


def wait_agree(st, alive, want, limit):
    end = time.time() + limit
    while time.time() < end:
        ss = agreed(st, alive, want=want)
        if ss:
            return ss
        time.sleep(0.05)
    raise SystemExit(f"no agreement on {want} within {limit}s")


def dur_ms(s):
    s = s.strip()
    if s.endswith("ms"):
        return float(s[:-2])
    if s.endswith("s"):
        return float(s[:-1]) * 1000
    raise ValueError(s)


def sent_counts(s):
    return dict(s.get("messages", {}).get("sent", {}))


def timeouts(s):
    return dict(s.get("timeouts", {}))


def idle(args, st, ports):
    """CPU share and RSS per node over args.idle seconds (nodes settled, nothing disturbed)."""
    tck = os.sysconf("SC_CLK_TCK")
    def cpu(pid):  # ns on CPU, summed over the process's threads (schedstat field 1)
        total = 0
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                total += int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total
    def rss(pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    pids = {p: PROCS[p].pid for p in ports}
    c0 = {p: cpu(pid) for p, pid in pids.items()}
    t0 = time.time()
    time.sleep(args.idle)
    dt = time.time() - t0
    c1 = {p: cpu(pid) for p, pid in pids.items()}
    out = []
    for p, pid in pids.items():
        out.append({"id": p, "cpu_pct": 100.0 * (c1[p] - c0[p]) / 1e9 / dt, "rss_kib": rss(pid)})
    return {"seconds": dt, "nodes": out, "load": open("/proc/loadavg").read().split()[:3]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/bully-node")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--heartbeat", default="100ms")
    ap.add_argument("--timeout", default="300ms")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--idle", type=float, default=0, help="seconds of idle measurement (0: none)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--best-case", action="store_true",
                    help="Bully's best case: only the second-highest node notices the crash")
    ap.add_argument("--others-timeout", default="10s",
                    help="with --best-case, the failure-detector timeout of the other nodes")
    args = ap.parse_args()
    random.seed(args.seed)
    h, T = dur_ms(args.heartbeat), dur_ms(args.timeout)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *a: (kill_all(), sys.exit(130)))
    tmp = tempfile.mkdtemp(prefix="bully-bench-")
    st = Status(args.bin)
    result = {"nodes": args.nodes, "best_case": args.best_case, "heartbeat_ms": h, "timeout_ms": T, "bound_ms": None,
              "lower_ms": 2 * T, "poll": "pyzmq REQ status" if zmq else "bully-node status --json",
              "trials": [], "load_start": open("/proc/loadavg").read().split()[:3],
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        ports = free_ports(args.nodes)
        data, logs = os.path.join(tmp, "data"), os.path.join(tmp, "logs")
        os.makedirs(data); os.makedirs(logs)
        for p in ports:
            start_node(args.bin, p, ports, args, data, logs)
        top = max(ports)
        wait_agree(st, ports, top, 30)
        # The bound as the node computes it (Durations::failover_bound, one-way delays left out).
        result["bound_ms"] = st.get(top)["timing"]["failover_bound_ms"]
        if args.idle > 0:
            time.sleep(max(1.0, 3 * h / 1000))
            result["idle"] = idle(args, st, ports)
        for i in range(args.trials):
            alive = [p for p in ports if p != top]
            # settle: several heartbeat rounds after agreement, then a random phase
            time.sleep(max(0.5, 1.5 * h / 1000) + random.uniform(0, h / 1000))
            before = {p: st.get(p) for p in alive}
            if any(v is None for v in before.values()):
                raise SystemExit("a survivor did not answer before the kill")
            t0 = time.time()
            PROCS[top].kill()
            ss = None
            deadline = t0 + max(10.0, 10 * result["bound_ms"] / 1000)
            while time.time() < deadline:
                ss = agreed(st, alive, exclude=top)
                if ss:
                    break
                time.sleep(0.005)
            t_poll = time.time()
            PROCS[top].wait()
            st.drop(top)
            if not ss:
                raise SystemExit(f"trial {i}: no agreement within {deadline - t0:.1f}s")
            new = ss[0]["coordinator"]
            adopted = max(s["epoch_since_unix_ms"] for s in ss)
            after = {s["id"]: s for s in ss}
            msgs, noticed, started = {}, [], []
            for p in alive:
                b, a = sent_counts(before[p]), sent_counts(after[p])
                for k, v in a.items():
                    if isinstance(v, (int, float)):
                        d = v - b.get(k, 0)
                        if d:
                            msgs[k] = msgs.get(k, 0) + d
                tb, ta = timeouts(before[p]), timeouts(after[p])
                if ta.get("heartbeat_timeout", 0) > tb.get("heartbeat_timeout", 0):
                    noticed.append(p)
                if after[p].get("elections_started", 0) > before[p].get("elections_started", 0):
                    started.append(p)
            proto = {k: v for k, v in msgs.items()
                     if k not in ("heartbeat", "heartbeat_ack", "total", "all")}
            tr = {"trial": i, "killed": top, "new": new, "failover_ms": adopted - t0 * 1000,
                  "poll_ms": (t_poll - t0) * 1000, "messages": proto,
                  "protocol_messages": sum(proto.values()),
                  "noticed": noticed, "elections_started_by": started,
                  "rank_of_noticers": sorted(sorted(ports).index(p) + 1 for p in noticed),
                  "rank_of_starters": sorted(sorted(ports).index(p) + 1 for p in started),
                  "timeouts_before": {p: timeouts(before[p]) for p in alive},
                  "timeouts_after": {p: timeouts(after[p]) for p in alive},
                  "load": open("/proc/loadavg").read().split()[0]}
            result["trials"].append(tr)
            print(f"trial {i:2d}: {tr['failover_ms']:7.1f} ms (poll {tr['poll_ms']:7.1f}) "
                  f"new {new} msgs {tr['protocol_messages']} noticed(rank) {tr['rank_of_noticers']}",
                  file=sys.stderr, flush=True)
            # restart the killed node; it takes over again at a higher round
            start_node(args.bin, top, ports, args, data, logs)
            wait_agree(st, ports, top, 30)
    finally:
        kill_all()
        result["load_end"] = open("/proc/loadavg").read().split()[:3]
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
