#!/usr/bin/env python3
"""A broken exercise node for the workbench's tests: the winner notifies nobody.

`notify_new_coordinator` sends nothing: the winner takes office silently and the others go on
following the old coordinator. The workbench must fail it on `notifies-all`, and on nothing
else. Usage as bully_peer.py.
"""

import bully_peer


class NotifiesNobody(bully_peer.Peer):
    def notify_new_coordinator(self):
        pass


if __name__ == "__main__":
    bully_peer.main(NotifiesNobody)
