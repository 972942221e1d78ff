"""The sim's viability landscape, measured through the real rig.

    .venv/bin/python bench/sim_landscape.py [--seeds 20] [--parallel 2]
                                            [--remove "Implementation Requirements"] ...

For ``spec/prime.md`` and for each copy with one section removed, N seeds are generated
by the sim provider (first attempts, generation 1) and run through the real rig (Docker).
Prints the viability rate with a Wilson 95 % interval, the closed-form expectation of the
defect model, the failure-stage distribution, and the difference to the base spec with a
Newcombe 95 % interval, plus the paired (same-seed) counts with an exact McNemar p-value:
the sim uses common random numbers, so the same seed under two specs differs only where
the defect probabilities differ, and the paired test is the sharp one. Figures only,
never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.llm.sim import SimProvider  # noqa: E402
from core.llm.sim import defects as dm  # noqa: E402
from core.llm.sim.specinfo import parse_spec_text  # noqa: E402

Z = 1.959964


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p1 - p2 (Newcombe's hybrid score method)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b vs c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def drop_section(text: str, title: str) -> str:
    """The spec without ``## title`` (and without it in the front matter's required-sections,
    so the copy is still a valid spec)."""
    out = re.sub(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## )", "", text, flags=re.S | re.M)
    if out == text:
        raise SystemExit(f"no section {title!r} in the spec")
    front = re.match(r"\A---\n.*?\n---\n", out, re.S)
    if front:
        fm = re.sub(rf"^[ \t]*-[ \t]*{re.escape(title)}[ \t]*\n", "", front.group(0), flags=re.M)
        out = fm + out[front.end():]
    from core.spec import check_spec

    problems = check_spec(out)
    if problems:
        raise SystemExit(f"removing {title!r} leaves an invalid spec: {problems[0]}")
    return out


def run_one(spec_text: str, seed: int, *, generation: int, workdir: Path) -> tuple[int, str, str, float]:
    """(seed, status, failure_stage, seconds) for one sim generation through the rig."""
    from core.prime.generate import generate
    from rig.api import run_artifact

    started = time.monotonic()
    out = workdir / f"seed-{seed}"
    res = asyncio.run(generate(spec_text, out, SimProvider(), generation=generation, seed=seed, model="sim-1"))
    if not res.ok:
        return seed, "no-artifact", res.error_kind or "generate", time.monotonic() - started
    for _try in range(3):  # a rig error is not the artifact's verdict: run it again
        try:
            res = run_artifact(out, backend="docker", generation=generation)
        except Exception as exc:  # noqa: BLE001 - a crash of the rig itself, reported below
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if not res.rig_error:
                return seed, res.report.status, res.report.failure_stage, time.monotonic() - started
            problem = res.rig_error
        print(f"  seed {seed}: rig error, retrying: {problem[:160]}", file=sys.stderr, flush=True)
    return seed, "rig-error", "rig-error", time.monotonic() - started


def measure(label: str, spec_text: str, seeds: list[int], generation: int, parallel: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="sim-landscape-") as tmp:
        # processes, not threads: each run is independent and CPython's ast is not thread-safe
        with ProcessPoolExecutor(max_workers=parallel) as pool:
            rows = list(pool.map(functools.partial(run_one, spec_text, generation=generation,
                                                   workdir=Path(tmp)), seeds))
    rig_errors = [seed for seed, status, _stage, _t in rows if status == "rig-error"]
    rows = [r for r in rows if r[1] != "rig-error"]
    seeds = [r[0] for r in rows]
    viable = {seed for seed, status, _stage, _t in rows if status == "viable"}
    stages = Counter(stage for _seed, status, stage, _t in rows if status != "viable")
    expected = dm.expected_viability(parse_spec_text(spec_text))
    predicted = sum(dm.decide(parse_spec_text(spec_text), s, generation).viable for s in seeds)
    return {"label": label, "n": len(rows), "viable": viable, "stages": stages, "expected": expected,
            "predicted": predicted, "seconds": sum(t for *_x, t in rows), "rig_errors": rig_errors}


def show(r: dict) -> None:
    k, n = len(r["viable"]), r["n"]
    lo, hi = wilson(k, n)
    stages = ", ".join(f"{s} {c}" for s, c in r["stages"].most_common()) or "none"
    print(f"{r['label']:<42} viability {k:>2}/{n} = {k / n:.2f}  95% CI [{lo:.2f}, {hi:.2f}]"
          f"  model expects {r['expected']:.2f} (decisions predict {r['predicted']}/{n})")
    excluded = f"; excluded after repeated rig errors: seeds {r['rig_errors']}" if r["rig_errors"] else ""
    print(f"{'':<42} failures by stage: {stages}; rig time {r['seconds']:.0f}s{excluded}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=str(ROOT / "spec" / "prime.md"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--generation", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--remove", action="append", default=None,
                    help='section to remove (repeatable); default "Implementation Requirements"')
    args = ap.parse_args(argv)
    from rig.image import ensure_image

    ensure_image(progress=lambda line: None)
    base_text = Path(args.spec).read_text(encoding="utf-8")
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    print(f"sim landscape: {Path(args.spec).name}, seeds {seeds[0]}..{seeds[-1]}, generation {args.generation}, "
          f"rig backend docker, {args.parallel} in parallel (SIMULATED provider)")
    base = measure(Path(args.spec).name, base_text, seeds, args.generation, args.parallel)
    show(base)
    for title in args.remove or ["Implementation Requirements"]:
        r = measure(f"without '{title}'", drop_section(base_text, title), seeds, args.generation, args.parallel)
        show(r)
        k1, k2, n1, n = len(base["viable"]), len(r["viable"]), base["n"], r["n"]
        lo, hi = newcombe(k1, n1, k2, n)
        only_base = len(base["viable"] - r["viable"])
        only_variant = len(r["viable"] - base["viable"])
        print(f"{'':<42} difference base - variant = {k1 / n1 - k2 / n:+.2f}  95% CI [{lo:+.2f}, {hi:+.2f}]"
              f"; paired seeds: {only_base} viable only with the base, {only_variant} only without the section"
              f" (exact McNemar p = {mcnemar_exact(only_base, only_variant):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
