"""Shared fixtures for the LLM tests, and the network guard.

**Network guard.** Nothing in these tests may talk to a real API. When this conftest is
imported (at collection, before any test runs) it patches ``socket.socket.connect`` /
``connect_ex`` and ``socket.getaddrinfo``. While a guarded test runs — every test under
``tests/llm`` (autouse fixture ``_no_network_violations``) and every test module that opts in
with ``from tests.llm.conftest import _no_network_violations`` (``tests/prime`` does) — an
attempt to connect an IPv4/IPv6 socket to a non-loopback address, or to resolve a name other
than ``localhost``, is refused with :class:`NetworkGuardError` *and* recorded, and the test
then FAILS even if the code under test swallowed the error (an SDK's retry loop would). Unix
sockets (Docker) are untouched. Outside guarded tests the patched functions pass straight
through, so other suites that legitimately reach a package mirror (the rig image build) keep
working in the same session.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
VIOLATIONS: list[str] = []
_ACTIVE = [0]  # > 0 while a guarded test runs


class NetworkGuardError(ConnectionRefusedError):
    pass


def is_loopback(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard / loopback
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    VIOLATIONS.append(what)
    raise NetworkGuardError(f"network guard: {what} (tests may only use loopback)")


def install_network_guard() -> None:
    if getattr(socket.socket.connect, "_cambrian_guard", False):
        return
    orig_connect = socket.socket.connect
    orig_connect_ex = socket.socket.connect_ex
    orig_getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address: Any) -> None:
        if not _ACTIVE[0]:
            return
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            if not is_loopback(address[0]):
                _refuse(f"connect to {address[0]}:{address[1] if len(address) > 1 else '?'}")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        return orig_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return orig_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if _ACTIVE[0] and not is_loopback(host):
            _refuse(f"resolve {host!r}")
        return orig_getaddrinfo(host, *args, **kw)

    connect._cambrian_guard = True  # type: ignore[attr-defined]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


install_network_guard()


@pytest.fixture(autouse=True)
def _no_network_violations():
    start = len(VIOLATIONS)
    _ACTIVE[0] += 1
    try:
        yield
    finally:
        _ACTIVE[0] -= 1
    new = VIOLATIONS[start:]
    if new:
        del VIOLATIONS[start:]
        pytest.fail("test tried to reach the network: " + "; ".join(new), pytrace=False)


@pytest.fixture
def network_violations():
    """For testing the guard itself: the violations recorded during the test, cleared after."""
    start = len(VIOLATIONS)

    class View:
        @property
        def new(self) -> list[str]:
            return VIOLATIONS[start:]

        def clear(self) -> None:
            del VIOLATIONS[start:]

    yield View()
    del VIOLATIONS[start:]


@pytest.fixture
async def fake():
    from core.llm.fake_server import FakeAnthropic

    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
def sink():
    from core.llm.ledger import MemorySink

    return MemorySink()
