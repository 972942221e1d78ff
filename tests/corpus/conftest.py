"""The corpus holds artifacts (with their own, often hostile, tests), not host tests.

Nothing under tests/corpus/ may ever be collected by the host's pytest: some of these
"tests" fork-bomb, hang, fill disks or try to kill every process they can see.
"""

collect_ignore_glob = ["*"]
