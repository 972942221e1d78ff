"""`cambrian serve --web`: textual-serve on 127.0.0.1 only, and a page that works offline
behind any tunnel: reached through a forwarder on another port (what `ssh -L 9000:...`
does), the page names no host or port, loads nothing from another site, and its
websocket — found the way the page finds it — drives a real TUI."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import threading
import time
import urllib.request
from urllib.parse import urljoin

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


class Tunnel:
    """A TCP port forward (what a tunnel is to the browser): localhost:port -> 127.0.0.1:target."""

    def __init__(self, target: int):
        self.target = target
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            upstream.settimeout(None)
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()
        for s in self.socks:
            s.close()


def _get(url: str, deadline: float) -> tuple[int, bytes]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def _first_screen_bytes(ws_url: str, timeout: float) -> bytes:
    import aiohttp

    got = b""
    async with aiohttp.ClientSession() as session:
        ws = await asyncio.wait_for(session.ws_connect(ws_url + "?width=100&height=30"), 15)
        async with ws:
            deadline = time.monotonic() + timeout
            while len(got) < 2000 and time.monotonic() < deadline:
                try:
                    msg = await asyncio.wait_for(ws.receive(), max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.BINARY:
                    got += msg.data
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
            await ws.close()
    return got


def test_serve_web_works_offline_behind_a_tunnel_to_another_port(seeded, children):
    home, _ = seeded
    port = free_port()
    code = (f"from pathlib import Path; from cambrian_tui.remote import serve_web_main; "
            f"serve_web_main(Path({str(home)!r}), {port})")
    child = children([sys.executable, "-c", code], cwd=REPO_ROOT)
    tunnel = None
    try:
        deadline = time.monotonic() + 30
        status, _ = _get(f"http://127.0.0.1:{port}/", deadline)
        assert status == 200
        tunnel = Tunnel(port)
        page_url = f"http://localhost:{tunnel.port}/"
        status, body = _get(page_url, deadline)
        page = body.decode()
        assert status == 200 and "textual-terminal" in page
        # nothing in the page names a host, a port or another site
        assert "127.0.0.1" not in page and str(port) not in page and "localhost" not in page
        assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", page), "an absolute URL in the page"
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", page), "a font or image from elsewhere"
        assert "googleapis" not in page and "gstatic" not in page
        # everything it loads comes through the tunnel
        assets = set(re.findall(r"(?:src|href)\s*=\s*\"([^\"]+)\"", page))
        assets |= set(re.findall(r"url\(\s*\"([^\"]+)\"\s*\)", page))
        assert any(a.endswith(".js") for a in assets) and any(a.endswith(".ttf") for a in assets)
        for asset in sorted(assets):
            status, data = _get(urljoin(page_url, asset), deadline)
            assert status == 200 and data, asset
        # the websocket, found as the page finds it (next to the page), runs the TUI
        ws_url = urljoin(page_url, "ws").replace("http://", "ws://")
        got = asyncio.run(_first_screen_bytes(ws_url, timeout=45))
        assert b"\x1b[" in got and len(got) > 200, got[:200]
        ip = _non_loopback_ip()
        if ip:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((ip, port)) != 0, "the web UI must not listen beyond loopback"
    finally:
        if tunnel is not None:
            tunnel.close()
        child.stop()
