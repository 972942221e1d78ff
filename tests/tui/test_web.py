"""`cambrian serve --web`: textual-serve on 127.0.0.1 only."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request

import pytest

from core.home import REPO_ROOT
from tests.tui.test_ssh import free_port

pytestmark = pytest.mark.timeout(120)


def _non_loopback_ip() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


def test_serve_web_binds_localhost_and_serves_the_page(seeded, children):
    home, _ = seeded
    port = free_port()
    code = (f"from pathlib import Path; from cambrian_tui.remote import serve_web_main; "
            f"serve_web_main(Path({str(home)!r}), {port})")
    child = children([sys.executable, "-c", code], cwd=REPO_ROOT)
    try:
        body = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.status == 200
                    body = resp.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        assert "textual" in body.lower(), body[:500]
        ip = _non_loopback_ip()
        if ip:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((ip, port)) != 0, "the web UI must not listen beyond loopback"
    finally:
        child.stop()
