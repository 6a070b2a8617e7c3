#!/usr/bin/env python3
"""A broken exercise node for the workbench's tests: it never starts an election.

`check_coordinator` notices a dead coordinator and then does nothing, so the node heartbeats the
dead port forever. The workbench must fail it on `detects`, and on nothing else.
Usage as bully_peer.py.
"""

import bully_peer


class NeverElects(bully_peer.Peer):
    def start_election(self):
        self.elect_now.clear()


if __name__ == "__main__":
    bully_peer.main(NeverElects)
