"""Every way out must fail. The artifact is viable only if the sandbox has no network.

``egress_targets.json`` is written by the host test at materialisation time: the docker
bridge gateway and a port on which the host is listening (so a reachable host would
accept the connection instead of refusing it).
"""

import errno
import json
import os
import socket

import pytest

try:
    with open("egress_targets.json", encoding="utf-8") as fh:
        TARGETS = json.load(fh)
except OSError:
    TARGETS = {}
GATEWAY = TARGETS.get("gateway", "172.17.0.1")
HOST_PORT = int(TARGETS.get("host_port", 2375))


def _report(what, outcome):
    os.write(1, f"corpus egress: {what}: {outcome}\n".encode())


def _must_not_connect(addr, timeout=3.0):
    try:
        sock = socket.create_connection(addr, timeout=timeout)
    except OSError as exc:
        _report(f"tcp {addr}", f"blocked ({exc.__class__.__name__}: {exc})")
        # Refused means the packet reached someone: that is egress too.
        assert exc.errno != errno.ECONNREFUSED, f"{addr} is reachable (connection refused)"
        return
    sock.close()
    pytest.fail(f"connected to {addr}: egress is possible")


def test_dns_resolution_fails():
    for name in ("example.com", "pypi.org", "host.docker.internal", "gateway.docker.internal"):
        with pytest.raises(OSError):
            socket.getaddrinfo(name, 443)
        _report(f"dns {name}", "blocked")


def test_tcp_to_public_resolver_fails():
    _must_not_connect(("1.1.1.1", 53))
    _must_not_connect(("8.8.8.8", 443))


def test_udp_to_public_resolver_gets_nothing():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    try:
        sock.sendto(query, ("1.1.1.1", 53))
        data = sock.recv(512)
    except OSError:
        return
    finally:
        sock.close()
    pytest.fail(f"got a DNS answer over UDP: {data!r}")


def test_tcp_to_docker_gateway_fails():
    _must_not_connect((GATEWAY, HOST_PORT))
    for port in (2375, 2376, 22, 80):
        try:
            sock = socket.create_connection((GATEWAY, port), timeout=2)
        except OSError as exc:
            assert exc.errno != errno.ECONNREFUSED, f"gateway {GATEWAY}:{port} answered (refused)"
        else:
            sock.close()
            pytest.fail(f"connected to gateway {GATEWAY}:{port}")


def test_host_loopback_is_not_shared():
    # The host listens on HOST_PORT on all interfaces: in a shared network namespace
    # this would connect.
    try:
        sock = socket.create_connection(("127.0.0.1", HOST_PORT), timeout=2)
    except OSError:
        return
    sock.close()
    pytest.fail("reached the host's listener over loopback: network namespace is shared")


def test_only_loopback_interface():
    names = {name for _, name in socket.if_nameindex()}
    assert names <= {"lo"}, f"network interfaces besides lo: {sorted(names)}"


def test_no_docker_socket():
    for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
        assert not os.path.exists(path), f"{path} is visible inside the sandbox"
