"""TUI benchmark: first paint at 10k generations, key latency under a log flood, RSS at 100k.

Prints figures next to their targets (DESIGN §4: never pass/fail on time):

- time to first paint with a 10k-generation database, the real `cambrian tui` process on
  a 120x40 pseudo-terminal: first frame, and the frame that shows the generation tree
  (target <= 1.0 s);
- key-press latency (key written to the pty -> handled -> repainted text back from the
  terminal) while another process streams 5 000 log lines/s into the log-chunk table of
  the generation on screen (target p99 <= 100 ms);
- resident memory of the TUI process with a 100k-generation database, tree loaded
  (target <= 250 MB).

    .venv/bin/python bench/tui_bench.py [--keys 200] [--rate 5000] [--big 100000]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.home import db_path  # noqa: E402
from core.store import Store  # noqa: E402
from tests.tui.seed import seed_bulk  # noqa: E402


def add_running_generation(home: Path, campaign_id: str = "c-live") -> int:
    """A running campaign with one in-progress generation (what the TUI attaches to)."""
    with Store.open(db_path(home)) as st:
        spec = st.spec_versions()[0].hash
        st.create_campaign(campaign_id, spec, {"spec_hash": spec, "generations": 10, "provider": "sim",
                                               "model": "sim-1"})
        st.set_campaign_state(campaign_id, "running")
        g = st.create_generation(spec_hash=spec, campaign_id=campaign_id)
        st.append_log(g.number, "rig", ["[rig] bench generation"])
        return g.number


# --- a real terminal ------------------------------------------------------------------------


class PtyApp:
    """`cambrian tui` on a pseudo-terminal; output drained by a thread."""

    def __init__(self, home: Path, cols: int = 120, rows: int = 40):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        for k in ("COLUMNS", "LINES", "TEXTUAL"):
            env.pop(k, None)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cambrian_tui.cli", "--home", str(home), "tui"],
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.master = master
        self.buf = bytearray()
        self.buf_start = 0  # offset of buf[0] in the whole output
        self.cond = threading.Condition()
        self.first_output: float | None = None
        self.marks: dict[bytes, float] = {}
        self._watch: list[bytes] = []
        self.cpu_marks: dict[bytes, float] = {}
        self._stop = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def watch(self, *needles: str) -> None:
        with self.cond:
            self._watch.extend(n.encode() for n in needles)

    def _drain(self) -> None:
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            now = time.perf_counter()
            with self.cond:
                if self.first_output is None and "╭".encode() in data:
                    self.first_output = now
                self.buf += data
                if len(self.buf) > 4_000_000:
                    del self.buf[:2_000_000]
                    self.buf_start += 2_000_000
                tail = bytes(self.buf[-400_000:])
                for n in self._watch:
                    if n not in self.marks and n in tail:
                        self.marks[n] = now
                        self.cpu_marks[n] = self.cpu_seconds()
                self.cond.notify_all()

    def wait_mark(self, needle: str, timeout: float = 60) -> float:
        key = needle.encode()
        deadline = time.perf_counter() + timeout
        with self.cond:
            while key not in self.marks:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"{needle!r} never appeared")
                self.cond.wait(left)
            return self.marks[key] - self.t0

    def press_wait(self, key: bytes, needle: str, timeout: float = 10) -> float:
        """Write a key, return seconds until ``needle`` appears in output written after it."""
        want = needle.encode()
        with self.cond:
            offset = self.buf_start + len(self.buf)
        t = time.perf_counter()
        os.write(self.master, key)
        deadline = t + timeout
        with self.cond:
            while True:
                start = max(0, offset - self.buf_start)
                if want in self.buf[start:]:
                    return time.perf_counter() - t
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"{needle!r} did not appear after the key")
                self.cond.wait(left)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the app process so far (all its threads)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
        self._stop = True
        self._thread.join(1)
        os.close(self.master)


def first_paint(home: Path, n: int, runs: int = 3) -> None:
    firsts, trees, cpus = [], [], []
    for _ in range(runs):
        app = PtyApp(home)
        app.watch(f"Generations {n}")
        try:
            tree = app.wait_mark(f"Generations {n}")
            firsts.append(app.first_output - app.t0)
            trees.append(tree)
            cpus.append(app.cpu_marks[f"Generations {n}".encode()])
        finally:
            app.close()
    print(f"first paint, {n:,} generations (real process, 120x40 pty, {runs} runs)")
    print(f"  first frame        median {statistics.median(firsts):.2f} s  (min {min(firsts):.2f})")
    print(f"  tree on screen     median {statistics.median(trees):.2f} s  (min {min(trees):.2f})   "
          f"target <= 1.0 s")
    print(f"  CPU time used until the tree is on screen: median {statistics.median(cpus):.2f} s "
          f"(what the wall time approaches on an idle machine; load now {os.getloadavg()[0]:.1f})")


# --- key latency under a log flood ------------------------------------------------------------

WRITER = r"""
import sys, time
from core.store import Store
db, gen, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
st = Store.open(db)
tick = 0.05
per = max(1, int(rate * tick))
i = 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < seconds:
    stream = "stdout" if (i // per) % 2 == 0 else "stderr"
    st.append_log(gen, stream, [f"{i + k:08d} tests/test_app.py::test_case_{(i + k) % 97} PASSED [ 42%]"
                                for k in range(per)])
    i += per
    nxt = t0 + (i / rate)
    delay = nxt - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
print(i, time.perf_counter() - t0)
"""


def key_latency(home: Path, gen: int, keys: int, rate: int) -> None:
    """Real process on a pty. The key is `f` (stick to the tail of the log / hold still):
    each press flips the log's subtitle between "tail" and "held", so the latency is the
    time from writing the key to the terminal until the repainted subtitle arrives."""
    app = PtyApp(home)
    app.watch(f"Rig log — #{gen}", "· tail")
    try:
        app.wait_mark(f"Rig log — #{gen}", 60)
        app.wait_mark("· tail", 60)
        time.sleep(1.0)  # past Textual's start-up terminal queries
        seconds = max(8.0, keys * 0.05 + 4)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path(home)), str(gen), str(rate),
                                   str(seconds)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)  # the flood reaches the screen
        samples = []
        following = True
        for _ in range(keys):
            # Textual rewrites only the cells that changed, so look for the new word alone
            needle = "held" if following else "· tail"
            samples.append(app.press_wait(b"f", needle) * 1000)
            following = not following
            time.sleep(0.02)
        out, _ = writer.communicate()
        written, took = out.split()
    finally:
        app.close()
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    print(f"key latency while {rate:,} log lines/s stream in (real process on a pty, {len(samples)} keys)")
    print(f"  streamed {int(written):,} lines in {float(took):.1f} s ({int(written) / float(took):,.0f}/s) "
          f"into the generation on screen")
    print(f"  p50 {p(0.50):.1f} ms  p90 {p(0.90):.1f} ms  p99 {p(0.99):.1f} ms  max {samples[-1]:.1f} ms   "
          f"target p99 <= 100 ms")


def rss(home: Path, n: int) -> None:
    app = PtyApp(home)
    app.watch(f"Generations {n}")
    try:
        t = app.wait_mark(f"Generations {n}", timeout=120)
        time.sleep(1.5)  # charts and summary settle
        mb = app.rss_mb()
    finally:
        app.close()
    print(f"memory with {n:,} generations (real process)")
    print(f"  tree on screen after {t:.2f} s; RSS {mb:.0f} MB   target <= 250 MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cambrian-tui-bench-") as tmp:
        home = Path(tmp) / "h10k"
        t = time.perf_counter()
        seed_bulk(home, args.n, campaign_id="c-bench")
        print(f"seeded {args.n:,} generations in {time.perf_counter() - t:.1f} s")
        first_paint(home, args.n)
        gen = add_running_generation(home)
        key_latency(home, gen, args.keys, args.rate)
        if not args.skip_big:
            big = Path(tmp) / "h100k"
            t = time.perf_counter()
            seed_bulk(big, args.big, campaign_id="c-big")
            print(f"seeded {args.big:,} generations in {time.perf_counter() - t:.1f} s")
            rss(big, args.big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
