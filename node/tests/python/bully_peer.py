#!/usr/bin/env python3
"""A Bully node in Python speaking the course exercise's wire protocol, for the tests.

Written from the protocol description (../../../README.md links it; the exercise's wire is in
node/PROTOCOL.md, "Exercise wire"): REP on the node's port, a fresh REQ per request (RCVTIMEO,
LINGER 0), pickled dicts:

    {'type': 'election', 'origin': port}      -> {'type': 'election_ok', 'origin': port}
    {'type': 'election_won', 'winner': port}  -> {'type': 'election_ok', 'origin': port}
    {'type': 'heartbeat', 'origin': port}     -> {'type': 'ack', 'processes': {port: True, ...}}

Usage: bully_peer.py PORT [COORDINATOR_PORT] [--heartbeat S] [--timeout S] [--host H]

Without COORDINATOR_PORT it starts as coordinator; with it, it heartbeats that node to learn the
processes, then holds an election (a process that starts holds an election). It prints
`COORDINATOR <port>` on stdout (flushed) every time its view of the coordinator changes, and
`PROCESSES <p1> <p2> ...` when it learns new processes, and `UNKNOWN <what>` for any request or
reply that is not one of the exercise's (the tests assert there is none).

This is a test peer among trusted test processes: it decodes with pickle.loads, which a real
node must not do on network input (the Rust node refuses any pickle that names code).
"""

import argparse
import pickle
import signal
import sys
import threading
import time

import zmq


class Peer:
    def __init__(self, port, contact, heartbeat, timeout, host):
        self.port = port
        self.host = host
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.ctx = zmq.Context()
        self.lock = threading.Lock()
        self.processes = {port: True}
        self.coordinator = None
        self.announced = threading.Event()  # an election_won arrived
        self.elect_now = threading.Event()  # an election request arrived from a lower process
        self.contact = contact
        self.stop = False

    # --- output the tests parse -------------------------------------------------------------
    def set_coordinator(self, c):
        with self.lock:
            changed = self.coordinator != c
            self.coordinator = c
        if changed:
            print(f"COORDINATOR {c}", flush=True)

    def learn(self, ports):
        with self.lock:
            new = [p for p in ports if p not in self.processes]
            for p in ports:
                self.processes[p] = True
            everyone = sorted(self.processes)
        if new:
            print("PROCESSES " + " ".join(str(p) for p in everyone), flush=True)

    # --- REQ side: one fresh socket per request, Lazy Pirate style ---------------------------
    def request_all(self, targets, msg):
        """Sends msg to every target in parallel; returns {target: reply} of those that answered."""
        expected = "ack" if msg["type"] == "heartbeat" else "election_ok"
        socks = {}
        poller = zmq.Poller()
        for t in targets:
            s = self.ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"tcp://{self.host}:{t}")
            s.send(pickle.dumps(msg))
            poller.register(s, zmq.POLLIN)
            socks[s] = t
        replies = {}
        deadline = time.monotonic() + self.timeout
        while socks and time.monotonic() < deadline:
            left = max(1, int((deadline - time.monotonic()) * 1000))
            for s, _ in poller.poll(left):
                t = socks.pop(s)
                try:
                    replies[t] = pickle.loads(s.recv())
                    if replies[t].get("type") != expected:
                        print(f"UNKNOWN reply {replies[t]!r} to {msg['type']}", flush=True)
                except Exception as e:
                    print(f"UNKNOWN undecodable reply to {msg['type']}: {e}", flush=True)
                poller.unregister(s)
                s.close()
        for s in socks:
            s.close()
        return replies

    # --- the three tasks of the exercise ------------------------------------------------------
    def rivals(self):
        """The processes an election asks: every higher one."""
        with self.lock:
            return [p for p in self.processes if p > self.port]

    def start_election(self):
        self.elect_now.clear()
        self.announced.clear()
        answers = self.request_all(self.rivals(), {"type": "election", "origin": self.port})
        if answers:
            # Someone higher holds the election: wait for its result, elect again if none.
            if not self.announced.wait(3 * self.timeout):
                self.elect_now.set()
            return
        self.set_coordinator(self.port)
        self.notify_new_coordinator()

    def notify_new_coordinator(self):
        with self.lock:
            others = [p for p in self.processes if p != self.port]
        self.request_all(others, {"type": "election_won", "winner": self.port})

    def check_coordinator(self):
        c = self.coordinator
        if c is None or c == self.port:
            return
        replies = self.request_all([c], {"type": "heartbeat", "origin": self.port})
        if c in replies and replies[c].get("type") == "ack":
            self.learn(list(replies[c].get("processes", {}).keys()))
        elif self.coordinator == c:
            self.start_election()

    # --- REP side -----------------------------------------------------------------------------
    def serve(self):
        rep = self.ctx.socket(zmq.REP)
        rep.setsockopt(zmq.LINGER, 0)
        bind_host = "127.0.0.1" if self.host in ("127.0.0.1", "localhost") else "*"
        rep.bind(f"tcp://{bind_host}:{self.port}")
        while not self.stop:
            if not rep.poll(100):
                continue
            raw = rep.recv()
            try:
                msg = pickle.loads(raw)
                kind = msg["type"]
            except Exception:
                msg, kind = {}, None
            if kind == "election":
                rep.send(pickle.dumps({"type": "election_ok", "origin": self.port}))
                self.learn([msg["origin"]])
                self.elect_now.set()
            elif kind == "election_won":
                rep.send(pickle.dumps({"type": "election_ok", "origin": self.port}))
                self.learn([msg["winner"]])
                self.set_coordinator(msg["winner"])
                self.announced.set()
            elif kind == "heartbeat":
                self.learn([msg["origin"]])
                with self.lock:
                    procs = dict(self.processes)
                rep.send(pickle.dumps({"type": "ack", "processes": procs}))
            elif not self.unknown_request(rep, raw):
                return
        rep.close()

    def unknown_request(self, rep, raw):
        """Answers a request that is not one of the exercise's; False stops serving."""
        print(f"UNKNOWN request {raw[:60]!r}", flush=True)
        # Answer anything else too: a REP that does not answer is wedged.
        with self.lock:
            procs = dict(self.processes)
        rep.send(pickle.dumps({"type": "ack", "processes": procs}))
        return True

    def run(self):
        threading.Thread(target=self.serve, daemon=True).start()
        if self.contact is None:
            self.set_coordinator(self.port)
        else:
            self.learn([self.contact])
            self.set_coordinator(self.contact)
            replies = self.request_all([self.contact], {"type": "heartbeat", "origin": self.port})
            if self.contact in replies:
                self.learn(list(replies[self.contact].get("processes", {}).keys()))
            self.start_election()
        next_beat = time.monotonic()
        while not self.stop:
            if self.elect_now.wait(max(0.0, next_beat - time.monotonic())):
                self.start_election()
                continue
            self.check_coordinator()
            next_beat = time.monotonic() + self.heartbeat


def main(peer_class=Peer):
    """Runs a node of `peer_class` (the broken variants of the workbench's tests subclass Peer)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("coordinator", type=int, nargs="?")
    ap.add_argument("--heartbeat", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    peer = peer_class(a.port, a.coordinator, a.heartbeat, a.timeout, a.host)

    def bye(*_):
        peer.stop = True
        sys.exit(0)

    signal.signal(signal.SIGTERM, bye)
    peer.run()


if __name__ == "__main__":
    main()
