"""Remote access: `cambrian serve --ssh` (asyncssh) and `cambrian serve --web` (textual-serve).

SSH: public-key authentication only, from ``<home>/ssh/authorized_keys``; the host key is
generated on first use and kept at ``<home>/ssh/host_key``. Every connection gets its
own TUI process on its own pseudo-terminal, started with the client's TERM and window
size; window changes are applied to the pty (TIOCSWINSZ), which sends SIGWINCH to the
app. A dropped connection ends that TUI process only: campaigns run in detached engines.

Web: textual-serve, bound to 127.0.0.1 only (reach it through an SSH tunnel). The page is
ours (``cambrian_tui/web/app_index.html``): relative URLs only and fonts from the server's
own static files, so it works offline and through a tunnel to any local port.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import time
import struct
import sys
import termios
from pathlib import Path

from core.quiet import silence_library_deprecations
from core.home import REPO_ROOT

DEFAULT_SSH_PORT = 8022
DEFAULT_WEB_PORT = 8023


def ssh_dir(home: Path) -> Path:
    return Path(home) / "ssh"


def tui_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "cambrian_tui.cli", "--home", str(home), "tui"]


def set_winsize(fd: int, rows: int, cols: int) -> None:
    rows = max(1, min(int(rows or 24), 1000))
    cols = max(1, min(int(cols or 80), 1000))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def ensure_host_key(home: Path):
    """Load ``<home>/ssh/host_key``, generating an ed25519 key on first use."""
    import asyncssh

    d = ssh_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    path = d / "host_key"
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="cambrian host key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key())
        (d / "host_key.pub").write_bytes(key.export_public_key())
    return asyncssh.read_private_key(str(path))


def _child_env(term: str | None, env: dict[str, str]) -> dict[str, str]:
    out = dict(os.environ)
    out["TERM"] = term or "xterm-256color"
    for key in ("COLORTERM", "LANG", "LC_ALL", "NO_COLOR"):
        if env.get(key):
            out[key] = env[key]
    pp = out.get("PYTHONPATH")
    out["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pp if pp else "")
    # the size comes from the pty (the client's window), never from the server's env
    for key in ("TEXTUAL", "COLUMNS", "LINES"):
        out.pop(key, None)
    return out


async def _tui_session(process, home: Path) -> None:
    """Bridge one SSH session to a TUI process on a fresh pty."""
    import asyncssh

    term = process.get_terminal_type()
    if not term:
        process.stdout.write(b"cambrian: this needs a terminal; connect with `ssh -t`\r\n")
        process.exit(1)
        return
    cols, rows, _pw, _ph = process.get_terminal_size()
    master, slave = pty.openpty()
    set_winsize(master, rows, cols)

    def make_controlling() -> None:  # runs in the child after setsid
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        child = await asyncio.create_subprocess_exec(
            *tui_command(home), stdin=slave, stdout=slave, stderr=slave, cwd=str(REPO_ROOT),
            env=_child_env(term, dict(process.env)), start_new_session=True, preexec_fn=make_controlling,
        )
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    output_done = asyncio.Event()

    def on_output() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
            output_done.set()
            return
        try:
            process.stdout.write(data)
        except Exception:  # the channel is gone
            loop.remove_reader(master)
            output_done.set()

    loop.add_reader(master, on_output)

    async def pump_input() -> None:
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as exc:
                current[0] = (exc.width, exc.height)
                set_winsize(master, exc.height, exc.width)
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue
            except Exception:
                return
            if not data:
                return
            try:
                os.write(master, data)
            except OSError:
                return

    current = [(cols, rows)]

    async def watch_size() -> None:
        # Belt and braces: a window change that arrives before the input pump reads
        # (e.g. right after connecting) is only visible in the channel's size.
        while True:
            await asyncio.sleep(0.5)
            try:
                w, h, _x, _y = process.get_terminal_size()
            except Exception:
                return
            if (w, h) != current[0] and w and h:
                current[0] = (w, h)
                set_winsize(master, h, w)

    input_task = asyncio.create_task(pump_input())
    size_task = asyncio.create_task(watch_size())
    wait_task = asyncio.create_task(child.wait())
    try:
        await asyncio.wait({input_task, wait_task}, return_when=asyncio.FIRST_COMPLETED)
        if not wait_task.done():
            # The client went away: end this TUI only (never a campaign).
            _signal_group(child.pid, signal.SIGHUP)
            try:
                await asyncio.wait_for(asyncio.shield(wait_task), 3)
            except asyncio.TimeoutError:
                _signal_group(child.pid, signal.SIGKILL)
                await wait_task
        else:
            try:
                await asyncio.wait_for(output_done.wait(), 1)
            except asyncio.TimeoutError:
                pass
    except asyncio.CancelledError:
        # The server itself is stopping: no session may outlive it (a TUI left on a pty
        # nobody reads would spin forever). SIGHUP first, SIGKILL shortly after.
        _signal_group(child.pid, signal.SIGHUP)
        # the loop is shutting down, so wait here (briefly) rather than schedule the kill
        deadline = time.monotonic() + 2
        while _alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(child.pid, signal.SIGKILL)
        raise
    finally:
        input_task.cancel()
        size_task.cancel()
        try:
            loop.remove_reader(master)
        except Exception:
            pass
        os.close(master)
    rc = wait_task.result()
    try:
        process.exit(rc if rc is not None and rc >= 0 else 1)
    except Exception:
        pass


def _alive(pid: int) -> bool:
    """True while pid runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def start_ssh_server(home: Path, port: int, host: str = "127.0.0.1"):
    """Start listening; returns the asyncssh acceptor (``.close()`` to stop)."""
    import asyncssh

    d = ssh_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    keys = d / "authorized_keys"
    if not keys.exists() or not keys.read_text().strip():
        raise FileNotFoundError(f"no authorized keys: add your public key (one per line) to {keys}")
    host_key = ensure_host_key(home)

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return False

        def kbdint_auth_supported(self) -> bool:
            return False

        def public_key_auth_supported(self) -> bool:
            return True

    return await asyncssh.create_server(
        Server, host, port, server_host_keys=[host_key], authorized_client_keys=str(keys),
        process_factory=lambda proc: _tui_session(proc, home), encoding=None,
        agent_forwarding=False, x11_forwarding=False, allow_pty=True,
        line_editor=False, keepalive_interval=30,
    )


def serve_ssh_main(home: Path, port: int = DEFAULT_SSH_PORT, host: str = "127.0.0.1") -> int:
    """`cambrian serve --ssh`: run until interrupted. Returns an exit status."""
    silence_library_deprecations()  # before asyncssh is imported
    home = Path(home)

    async def main() -> int:
        try:
            server = await start_ssh_server(home, port, host)
        except FileNotFoundError as exc:
            print(f"cambrian: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"cambrian: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            return 1
        fp = ensure_host_key(home).get_fingerprint()
        print(f"cambrian: SSH on {host}:{port}  (host key {fp})", flush=True)
        print(f"cambrian: keys from {ssh_dir(home) / 'authorized_keys'}; connect with: "
              f"ssh -t -p {port} {host}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


WEB_TEMPLATES = Path(__file__).with_name("web")


def web_server(home: Path, port: int):
    """textual-serve with our page: nothing in it names a host, a port or another site."""
    import aiohttp_jinja2
    from textual_serve.server import Server, to_int

    class CambrianWebServer(Server):
        @aiohttp_jinja2.template("app_index.html")
        async def handle_index(self, request):  # type: ignore[override]
            return {"title": self.title, "font_size": to_int(request.query.get("fontsize", "16"), 16)}

    cmd = " ".join(_quote(a) for a in tui_command(Path(home)))
    return CambrianWebServer(cmd, host="127.0.0.1", port=port, title="Cambrian", templates_path=WEB_TEMPLATES)


def serve_web_main(home: Path, port: int = DEFAULT_WEB_PORT) -> int:
    """`cambrian serve --web`: the TUI in a browser via textual-serve, on 127.0.0.1 only."""
    server = web_server(home, port)
    print(f"cambrian: web UI on port {port} of 127.0.0.1 (localhost only); from elsewhere, forward any "
          f"local port to it, e.g. ssh -L 9000:127.0.0.1:{port} HOST, then open http://localhost:9000/",
          flush=True)
    server.serve()
    return 0


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
