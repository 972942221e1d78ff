"""`cambrian serve --ssh`: a real OpenSSH client (in tmux) against serve_ssh_main."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.home import REPO_ROOT, db_path
from core.store import Store
from tests.tui.termtools import Tmux, require_tools
from tests.ports import free_port

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _terminal_tools():
    require_tools("tmux", "ssh", "ssh-keygen")


def tui_pids(home: Path) -> list[int]:
    """PIDs of TUI processes started for this home (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [c.decode(errors="replace") for c in cmd if c]
        if "cambrian_tui.cli" in args and str(home) in args and args[-1] == "tui":
            out.append(int(d.name))
    return out


class SSHServer:
    def __init__(self, home: Path, children):
        self.home = home
        self.port = free_port()
        code = (f"from pathlib import Path; from cambrian_tui.remote import serve_ssh_main; "
                f"raise SystemExit(serve_ssh_main(Path({str(home)!r}), {self.port}))")
        self.child = children([sys.executable, "-c", code], cwd=REPO_ROOT)
        # our own words first: no library's warning may come before them
        first = self.child.first_line(60)
        assert first.startswith(f"cambrian: SSH on 127.0.0.1:{self.port}"), self.child.output()

    def stop(self) -> None:
        self.child.stop()


@pytest.fixture
def client_key(tmp_path) -> Path:
    key = tmp_path / "client" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def authorize(home: Path, key: Path) -> None:
    d = home / "ssh"
    d.mkdir(exist_ok=True)
    (d / "authorized_keys").write_text(key.with_suffix(".pub").read_text())


def ssh_command(key: Path, port: int) -> str:
    return " ".join(shlex.quote(a) for a in [
        "ssh", "-tt", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no", "127.0.0.1"])


def test_ssh_session_main_screen_resize_and_disconnect(seeded, client_key, children):
    home, facts = seeded
    authorize(home, client_key)
    server = SSHServer(home, children)
    t = Tmux(ssh_command(client_key, server.port), 120, 40)
    try:
        t.wait_for("Campaigns (2)", 30)
        screen = t.wait_until(lambda s: "running tests" in s and len(s.splitlines()[0].rstrip()) == 120, 15,
                              "the main screen at 120x40")
        assert (home / "ssh" / "host_key").exists()
        assert oct((home / "ssh" / "host_key").stat().st_mode & 0o777) == "0o600"
        lines = screen.splitlines()
        assert lines[0].startswith("╭─ Campaigns") and lines[0].rstrip().endswith("╮")
        assert len(lines[0].rstrip()) == 120
        # the window shrinks: the app re-lays out to the new width
        t.resize(90, 30)
        assert t.pane_size() == (90, 30)

        def relaid(s: str) -> bool:
            first = s.splitlines()[0].rstrip() if s.strip() else ""
            rows = s.rstrip("\n").splitlines()
            return (first.endswith("╮") and len(first) == 90 and len(rows) == 30
                    and rows[-1].startswith("F1/? Help q Quit") and "New" in rows[-1])

        screen = t.wait_until(relaid, 15, "the app to re-lay out at 90x30")
        assert len(screen.splitlines()) <= 30
        t.resize(120, 40)
        t.wait_until(lambda s: len(s.splitlines()[0].rstrip()) == 120, 15, "the app to grow back")
        # keys travel through: open help and close it, then quit
        time.sleep(1.0)
        t.keys("F1")
        t.wait_for("Keys — Campaigns")
        t.keys("Escape")
        t.keys("q")
        t.wait_for("[exited]", 15)
        deadline = time.monotonic() + 10
        while tui_pids(home) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tui_pids(home) == []
        # an abrupt disconnect (the client is killed) ends that TUI too, nothing else
        t2 = Tmux(ssh_command(client_key, server.port), 100, 30)
        t2.wait_for("Campaigns (2)", 30)
        assert len(tui_pids(home)) == 1
        t2.kill()
        deadline = time.monotonic() + 15
        while tui_pids(home) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tui_pids(home) == []
        assert server.child.proc.poll() is None, "the server must keep serving"
    finally:
        t.kill()
        server.stop()


def test_ssh_refuses_unknown_keys(seeded, client_key, tmp_path, children):
    home, _ = seeded
    other = tmp_path / "other" / "id_ed25519"
    other.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    authorize(home, client_key)
    server = SSHServer(home, children)
    try:
        res = subprocess.run(shlex.split(ssh_command(other, server.port)) + ["true"], capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert res.returncode != 0
        assert "Permission denied" in res.stderr
        assert tui_pids(home) == []
    finally:
        server.stop()


def test_ssh_without_authorized_keys_explains(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    res = subprocess.run([sys.executable, "-c", "from pathlib import Path; from cambrian_tui.remote import "
                          f"serve_ssh_main; raise SystemExit(serve_ssh_main(Path({str(home)!r}), {free_port()}))"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "authorized_keys" in res.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_campaign_survives_ssh_drop_and_reconnect_sees_progress(tmp_path, client_key, rig_ready, children):
    from core.engine.launch import start_detached
    from core.models import CampaignSettings

    home = tmp_path / "home"
    home.mkdir()
    authorize(home, client_key)
    spec = (REPO_ROOT / "spec" / "echo.md").read_text()
    settings = CampaignSettings(spec_hash="sha256:" + "0" * 64, generations=4, parallelism=1, provider="sim",
                                model="sim-1", seed=3, max_retries=0, backend="docker")
    cid = start_detached(home, settings, spec, label="ssh-drop")
    server = SSHServer(home, children)
    try:
        t = Tmux(ssh_command(client_key, server.port), 120, 40)
        t.wait_for("Campaigns (1)", 30)
        t.wait_for("● engine alive", 30)
        with Store.open(db_path(home)) as st:
            before = len(st.generations(cid))
        t.kill()  # the link drops
        time.sleep(2)
        with Store.open(db_path(home)) as st:
            assert st.lease_alive(cid), "dropping the SSH link must not stop the campaign"
            deadline = time.monotonic() + 300
            while st.campaign(cid)["state"] not in ("completed", "stopped", "aborted", "crashed"):
                assert time.monotonic() < deadline, "campaign did not finish"
                time.sleep(1)
            assert st.campaign(cid)["state"] == "completed"
            after = len(st.generations(cid))
        assert before < after == 4, (before, after)  # it kept going while nobody watched
        t2 = Tmux(ssh_command(client_key, server.port), 120, 40)
        try:
            screen = t2.wait_for("completed", 30)
            assert "4/4" in screen  # the reconnect sees the finished campaign
        finally:
            t2.kill()
    finally:
        server.stop()
        with Store.open(db_path(home)) as st:
            if st.lease_alive(cid):
                st.send_command(cid, "abort")
    # no TUI session may outlive the server (one left on an unread pty spins forever)
    deadline = time.monotonic() + 8
    while tui_pids(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tui_pids(home) == []
