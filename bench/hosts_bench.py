"""Rig hosts: the per-run overhead of the OpenSSH forward, and throughput with two hosts vs one.

    sudo .venv/bin/python bench/hosts_bench.py [--runs 12] [--seq 5]

Needs root (it starts the stand-in remote host of tests/hosts/remote_host.py: a second
dockerd in its own network namespace behind a loopback sshd; stopped at the end) and the
rig image. Every run judges the calibration artifact (core/hosts/calibrate.py: build, test,
start, probe -- all the rig's stages).

Figures
-------
* **forward overhead**: ``--seq`` runs one after another on the stand-in engine, once
  through its socket directly and once through ``ssh -N -L`` (the way the engine reaches a
  rig host). Same engine, same machine: the difference is what the SSH link adds per run.
  (And the same on the local engine, for reference.)
* **throughput**: ``--runs`` runs over 2 slots: both on ``local`` (one host), then one slot
  on ``local`` and one on the stand-in (two hosts). On this one machine both engines share
  the same 2 cores, so "same total cores" holds by construction, and the ratio shows what
  spreading over hosts costs, not what a second machine would add.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.hosts.calibrate import write_calibration_artifact  # noqa: E402
from rig.api import run_artifact, wait_removed  # noqa: E402
from rig.remote import Forward, SshOptions, SshTarget  # noqa: E402
from tests.hosts.remote_host import RemoteHost, unavailable_reason  # noqa: E402

LABELS = {"cambrian.bench": "hosts"}


def one(art: Path, url: str | None) -> float:
    t0 = time.monotonic()
    res = run_artifact(art, docker_url=url, labels=LABELS)
    if not res.viable:
        raise SystemExit(f"calibration run not viable on {url or 'local'}: {res.rig_error or res.report.diagnostics}")
    return time.monotonic() - t0


def interleaved(art: Path, urls: list[str | None], n: int) -> list[list[float]]:
    """n runs per engine, one after another, the engines taking turns (a drifting load
    on this shared machine then weighs on each alike)."""
    for url in urls:
        one(art, url)  # warm-up (page cache, image layers)
    out: list[list[float]] = [[] for _ in urls]
    for _ in range(n):
        for i, url in enumerate(urls):
            out[i].append(one(art, url))
    return out


def spread(art: Path, urls: list[str | None], n: int) -> float:
    """n runs over len(urls) slots, a worker per slot taking the next run."""
    left = list(range(n))
    t0 = time.monotonic()

    def worker(url):
        while True:
            try:
                left.pop()
            except IndexError:
                return
            one(art, url)

    with ThreadPoolExecutor(len(urls)) as pool:
        list(pool.map(worker, urls))
    return time.monotonic() - t0


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f}s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--seq", type=int, default=5)
    args = ap.parse_args()
    why = unavailable_reason()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    from rig.backends.docker import image_tag

    host = RemoteHost.start()
    fwd = None
    try:
        load_s = host.load_image(image_tag())
        print(f"stand-in host up; rig image docker save|load: {load_s:.1f}s")
        with tempfile.TemporaryDirectory() as tmp:
            fwd = Forward(SshTarget.parse(host.url),
                          SshOptions(identity=str(host.key), known_hosts=str(host.known_hosts)),
                          Path(tmp) / "f.sock", str(host.docker_sock))
            url = fwd.ensure()
            direct = f"unix://{host.docker_sock}"
            art = write_calibration_artifact(Path(tmp) / "a")
            loc, dir_, fw = interleaved(art, [None, direct, url], args.seq)
            print(f"one run, local engine:               {fmt(loc)}")
            print(f"one run, stand-in engine direct:     {fmt(dir_)}")
            print(f"one run, stand-in engine via ssh -L: {fmt(fw)}")
            print(f"forward overhead per run: {statistics.median(fw) - statistics.median(dir_):+.2f}s "
                  f"({(statistics.median(fw) / statistics.median(dir_) - 1) * 100:+.0f}%)")
            ones, twos = [], []
            for _ in range(2):  # ABAB: the same drift on both
                ones.append(spread(art, [None, None], args.runs))
                twos.append(spread(art, [None, url], args.runs))
            one_host, two_hosts = sum(ones) / 2, sum(twos) / 2
            print(f"{args.runs} runs on 2 slots, one host (local x2):      "
                  f"{' / '.join(f'{x:.1f}s' for x in ones)} ({args.runs / one_host * 3600:.0f} runs/h)")
            print(f"{args.runs} runs on 2 slots, two hosts (local + ssh): "
                  f"{' / '.join(f'{x:.1f}s' for x in twos)} ({args.runs / two_hosts * 3600:.0f} runs/h)")
            print(f"two hosts / one host throughput: {one_host / two_hosts:.2f}x")
            wait_removed(60.0)
    finally:
        if fwd is not None:
            fwd.stop()
        notes = host.stop()
        if notes:
            print(f"teardown: {notes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
