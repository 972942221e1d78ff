"""Store benchmark: insert rate for 100k generations with reports, lineage load time.

Prints figures and ratios against a baseline measured in the same run (a bare
sqlite3 table with default pragmas, no triggers, no indexes, same batching).
Never pass/fail on time.

    .venv/bin/python bench/store_bench.py [--n 100000] [--lineage 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.store import Store  # noqa: E402


def fake_report(i: int, rng: random.Random) -> dict:
    viable = rng.random() < 0.6
    checks = {"manifest": {"passed": True, "duration_ms": 3}, "build": {"passed": True, "duration_ms": 400},
              "test": {"passed": viable, "duration_ms": 2000, "tests_run": 12, "tests_passed": 12 if viable else 9}}
    rep = {"generation": i, "status": "viable" if viable else "non-viable",
           "failure_stage": "none" if viable else "test", "checks": checks,
           "fitness": {"tests_run": 12, "test_pass_rate": 1.0 if viable else 0.75, "source_lines": 400 + i % 50},
           "completed_at": "2026-11-21T00:00:00Z"}
    if not viable:
        rep["diagnostics"] = {"stage": "test", "summary": "3 of 12 tests failed", "exit_code": 1,
                              "failures": [{"test": "tests/test_a.py::test_x", "error": "AssertionError"}],
                              "stdout_tail": "F" * 200, "stderr_tail": ""}
    return rep


def rows(n: int, spec_hash: str, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rep = fake_report(i, rng)
        out.append({"number": i, "parent": rng.randrange(i) if i else None, "campaign_id": None,
                    "spec_hash": spec_hash, "outcome": "promoted" if rep["status"] == "viable" else "failed",
                    "report": rep})
    return out


def bench_inserts(n: int, batch: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "b.db")
        spec = store.add_spec("# bench spec\n")
        data = rows(n, spec.hash)
        t = time.perf_counter()
        for i in range(0, n, batch):
            store.bulk_insert_generations(data[i:i + batch])
        ours = time.perf_counter() - t
        assert store.conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == n
        # the engine's real path: one in_progress insert + one report transaction per generation
        k = min(2000, n)
        t = time.perf_counter()
        for i in range(k):
            g = store.create_generation(spec_hash=spec.hash)
            store.record_report(g.number, data[i]["report"])
        per_gen = (time.perf_counter() - t) / k
        store.close()

        base = sqlite3.connect(Path(d) / "base.db")
        base.execute("CREATE TABLE g (number INTEGER PRIMARY KEY, parent INTEGER, spec_hash TEXT, outcome TEXT, "
                     "report_json TEXT)")
        t = time.perf_counter()
        for i in range(0, n, batch):
            base.executemany("INSERT INTO g VALUES (?, ?, ?, ?, ?)",
                             [(r["number"], r["parent"], r["spec_hash"], r["outcome"], json.dumps(r["report"]))
                              for r in data[i:i + batch]])
            base.commit()
        baseline = time.perf_counter() - t
        base.close()
    return ours, baseline, per_gen


def bench_lineage(n: int, repeats: int = 5) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "l.db")
        spec = store.add_spec("# bench spec\n")
        store.bulk_insert_generations(rows(n, spec.hash))
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            lin = store.lineage()
            best = min(best, time.perf_counter() - t)
        assert len(lin) == n
        # baseline: load full generation objects (what a naive tree would do)
        full = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            gens = store.generations()
            full = min(full, time.perf_counter() - t)
        assert len(gens) == n
        store.close()
    return best, full


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--lineage", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    ours, baseline, per_gen = bench_inserts(a.n, a.batch)
    print(f"inserts: {a.n} generations with reports, batches of {a.batch}")
    print(f"  cambrian store (WAL, synchronous=FULL, triggers, events, indexes): "
          f"{ours:.2f} s = {a.n / ours:,.0f} generations/s")
    print(f"  baseline bare sqlite3 table (default pragmas, no triggers/indexes): "
          f"{baseline:.2f} s = {a.n / baseline:,.0f} rows/s")
    print(f"  ratio ours/baseline throughput: {baseline / ours:.2f}")
    print(f"  engine path (2 transactions per generation, fsync each): {per_gen * 1000:.2f} ms/generation "
          f"= {1 / per_gen:,.0f} generations/s")
    lin, full = bench_lineage(a.lineage)
    print(f"lineage of {a.lineage} generations: {lin * 1000:.1f} ms (best of 5); "
          f"full Generation objects: {full * 1000:.1f} ms; ratio {full / lin:.1f}x")


if __name__ == "__main__":
    main()
