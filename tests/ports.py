"""A loopback TCP port nothing listens on (bound, then released) — for a test's own server,
or for a connection that must be refused."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
