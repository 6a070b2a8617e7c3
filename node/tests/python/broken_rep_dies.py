#!/usr/bin/env python3
"""A broken exercise node for the workbench's tests: its REP loop dies on a bad frame.

On a request that is not one of the exercise's, the loop that serves requests ends without a
word (and without replying), as a loop that lets the exception of `pickle.loads` end it
silently would. The process runs on, but nobody gets an answer from it any more. The
workbench must fail it on `responsive`, and on nothing else. Usage as bully_peer.py.
"""

import bully_peer


class RepDies(bully_peer.Peer):
    def unknown_request(self, rep, raw):
        return False


if __name__ == "__main__":
    bully_peer.main(RepDies)
