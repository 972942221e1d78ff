"""Rig benchmark: our rig against a bare sequential pipeline, on the same artifacts, in the
same run. Figures and ratios only; never pass/fail.

The corpus is the shipped specs' viable artifacts: the sim provider writes artifacts for
spec/echo.md and spec/prime.md (seeds 0, 1, ...) until ``--per-spec`` of each are viable
under our rig. Each artifact then goes through, alternately (so that noise hits both):

* **ours** — ``rig.api.run_artifact`` on the docker backend, as the engine calls it, with
  the run's containers prepared ahead (``rig.api.prepare``), as the engine does while its
  LLM call is in flight. Preparing is not timed as part of the run (it is printed apart), and
  neither is the background removal of the run's containers, which is waited for before the
  next measurement so that it slows neither pipeline;
* **bare** — what a minimal rig must do, sequentially, in one container: ``docker run
  --network none`` the rig image, copy the files in, exec build, exec test, exec start,
  probe the health URL (a loop inside the container), remove. No hardening, no trusted
  results, no vectors.

Printed: per artifact ours/bare totals, per stage medians, and the total ratio. The
verdicts of ours must equal the expected ones (viable) on every run.

    .venv/bin/python bench/rig_bench.py [--per-spec 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rig.api import prepare, run_artifact, wait_removed  # noqa: E402

SPECS = ("echo", "prime")
OURS_STAGES = ("setup", "inject", "build", "test", "start", "health", "teardown", "remove")
BARE_STAGES = ("run", "copy", "build", "test", "start+health", "remove")
PROBE = r'''
import json, sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            print(r.status); sys.exit(0 if 200 <= r.status < 300 else 1)
    except Exception:
        time.sleep(0.05)
print("not ready"); sys.exit(1)
'''


def generate(spec: str, seed: int, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "cambrian_tui.cli", "generate", str(ROOT / "spec" / f"{spec}.md"),
                    "--out", str(out), "--provider", "sim", "--seed", str(seed)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)


def viable_corpus(workdir: Path, per_spec: int) -> list[tuple[str, Path]]:
    corpus = []
    for spec in SPECS:
        found, seed = 0, 0
        while found < per_spec and seed < 60:
            out = workdir / f"{spec}-{seed}"
            generate(spec, seed, out)
            if run_artifact(out, backend="docker").viable:
                corpus.append((f"{spec}#{seed}", out))
                found += 1
            seed += 1
    return corpus


def bare(client, image: str, art: Path) -> tuple[dict[str, int], bool]:
    manifest = json.loads((art / "manifest.json").read_text())
    entry = manifest["entry"]
    ms: dict[str, int] = {}

    def lap(name: str, t: float) -> float:
        now = time.monotonic()
        ms[name] = int((now - t) * 1000)
        return now

    t = t0 = time.monotonic()
    c = client.containers.run(image, ["sleep", "infinity"], detach=True, network_mode="none",
                              working_dir="/workspace", user="10001:10001",
                              tmpfs={"/workspace": "rw,exec,uid=10001,gid=10001", "/tmp": "rw,exec"},
                              labels={"cambrian.bench": "bare"})
    t = lap("run", t)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for rel in manifest["files"]:
                data = (art / rel).read_bytes()
                info = tarfile.TarInfo(rel)
                info.size, info.uid, info.gid, info.mode = len(data), 10001, 10001, 0o644
                tar.addfile(info, io.BytesIO(data))
        # put_archive is refused into a tmpfs of a running container on some engines: tar via exec
        sock = c.exec_run(["tar", "-x", "-C", "/workspace"], stdin=True, socket=True)
        raw = getattr(sock.output, "_sock", sock.output)
        raw.sendall(buf.getvalue())
        raw.shutdown(1)
        while raw.recv(65536):
            pass
        t = lap("copy", t)
        ok = c.exec_run(["sh", "-c", entry["build"]]).exit_code == 0
        t = lap("build", t)
        ok = ok and c.exec_run(["sh", "-c", entry["test"]]).exit_code == 0
        t = lap("test", t)
        c.exec_run(["sh", "-c", entry["start"]], detach=True)
        ok = ok and c.exec_run(["python", "-c", PROBE, entry["health"]]).exit_code == 0
        t = lap("start+health", t)
    finally:
        c.remove(force=True)
    lap("remove", t)
    ms["total"] = int((time.monotonic() - t0) * 1000)
    return ms, ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-spec", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ns = ap.parse_args()
    from rig.image import docker_client, ensure_image

    image = ensure_image(progress=lambda m: print(f"[image] {m}", file=sys.stderr))
    client = docker_client()
    with tempfile.TemporaryDirectory() as tmp:
        print("generating the corpus (sim provider, viable under our rig) ...", file=sys.stderr)
        corpus = viable_corpus(Path(tmp), ns.per_spec)
        wait_removed(120.0)
        print(f"corpus: {', '.join(name for name, _ in corpus)}", file=sys.stderr)
        ours_ms: dict[str, list[int]] = {}
        bare_ms: dict[str, list[int]] = {}
        rows = []
        runs = [(name, art) for _ in range(ns.repeats) for name, art in corpus]
        prep_ms, removal_ms = [], []
        for i, (name, art) in enumerate(runs):
            def ours():
                t = time.monotonic()
                prepared = prepare(run_id=f"bench-{uuid.uuid4().hex[:8]}")
                prepared.thread.join(120.0)  # the engine does this while the LLM writes
                prep_ms.append(int((time.monotonic() - t) * 1000))
                res = run_artifact(art, backend="docker", prepared=prepared)
                t = time.monotonic()
                wait_removed(120.0)  # off the critical path: not part of the run's time
                removal_ms.append(int((time.monotonic() - t) * 1000))
                return res
            # alternate which goes first, so that drifting load hits both
            if i % 2:
                b, bok = bare(client, image, art)
                res = ours()
            else:
                res = ours()
                b, bok = bare(client, image, art)
            if not res.viable or not bok:
                print(f"WARNING {name}: ours {res.report.status}, bare {'ok' if bok else 'failed'}")
            for k in OURS_STAGES + ("total",):
                ours_ms.setdefault(k, []).append(res.stage_ms.get(k, 0) if k != "total" else res.total_ms)
            for k in BARE_STAGES + ("total",):
                bare_ms.setdefault(k, []).append(b[k])
            rows.append((name, res.total_ms, b["total"], res.report.status))
        print(f"{'artifact':<12} {'ours ms':>8} {'bare ms':>8} {'ratio':>6}  verdict")
        for name, o, b, status in rows:
            print(f"{name:<12} {o:>8} {b:>8} {o / b:>6.2f}  {status}")
        med = {k: statistics.median(v) for k, v in ours_ms.items()}
        bmed = {k: statistics.median(v) for k, v in bare_ms.items()}
        print()
        print("median per stage, ours: " + ", ".join(f"{k} {med[k]:.0f}" for k in OURS_STAGES))
        print("median per stage, bare: " + ", ".join(f"{k} {bmed[k]:.0f}" for k in BARE_STAGES))
        # ours: setup runs from the run's start to the files being in place (it includes
        # inject); start, health and teardown run in the probe container while the tests run
        print(f"per stage ours/bare: build {med['build'] / bmed['build']:.2f}, "
              f"test {med['test'] / bmed['test']:.2f}, start+health "
              f"{(med['start'] + med['health']) / bmed['start+health']:.2f} (ours: beside the "
              f"tests, in the probe container), fixed {(med['setup'] + med['remove']) / (bmed['run'] + bmed['copy'] + bmed['remove']):.2f} "
              f"(ours: setup incl. inject + remove; bare: run + copy + remove)")
        tot_o, tot_b = sum(ours_ms["total"]), sum(bare_ms["total"])
        print(f"TOTAL ours {tot_o / 1000:.1f} s, bare {tot_b / 1000:.1f} s over {len(runs)} runs: "
              f"ours/bare {tot_o / tot_b:.2f} (target <= 0.8); per-run median ratio "
              f"{statistics.median(o / b for _, o, b, _ in rows):.2f}")
        print(f"off the critical path, ours (median): containers prepared in {statistics.median(prep_ms):.0f} ms "
              f"before the run, removed in {statistics.median(removal_ms):.0f} ms after it")
        print(f"(load average at the end: {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
