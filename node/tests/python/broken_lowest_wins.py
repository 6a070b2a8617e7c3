#!/usr/bin/env python3
"""A broken exercise node for the workbench's tests: the lowest process wins.

`start_election` asks every *lower* process instead of every higher one, so the lowest live
process becomes coordinator. The workbench must fail it on `elects-highest`, and on nothing
else. Usage as bully_peer.py.
"""

import bully_peer


class LowestWins(bully_peer.Peer):
    def rivals(self):
        with self.lock:
            return [p for p in self.processes if p < self.port]


if __name__ == "__main__":
    bully_peer.main(LowestWins)
