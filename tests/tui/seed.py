"""Deterministic fixture databases for the TUI tests, snapshots and bench.

Everything is fixed: texts, outcomes (a seeded RNG), and timestamps (the store's clock
is replaced while seeding), so snapshots are byte-stable.
"""

from __future__ import annotations

import json
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from unittest import mock

from core.home import db_path
from core.models import LLMCall
from core.store import Store

SPEC_V1 = """\
---
name: tally
spec-format: 1
port: 8410
system-prompt-section: System Prompt
required-sections:
  - System Prompt
  - HTTP Contract
  - Implementation Requirements
  - Testing
  - Acceptance Vectors
entry:
  build: python -m compileall -q .
  test: python -m pytest -q
  start: python -m tally
  health: http://localhost:8410/health
---

# Tally

Tally counts words. It is a fixture organism for the TUI tests.

## System Prompt

You write complete, small Python codebases from a specification.
Emit every file as a block and never leave placeholders.

## HTTP Contract

Tally listens on port 8410 and answers JSON.

- `GET /health` answers `{"status": "ok", "generation": N}`.
- `POST /count` answers `{"words": N}` for a text body.

## Implementation Requirements

- Python 3.11 and the standard library only.
- A package `tally/` with `__main__.py` so that `python -m tally` starts it.

## Testing

Test both endpoints with the standard library only.

## Acceptance Vectors

<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: health-ok
method: GET
path: /health
expect:
  status: 200
  body_contains:
    status: ok
```
<!-- END FROZEN: acceptance-vectors -->
"""

SPEC_V2 = SPEC_V1.replace(
    "- A package `tally/` with `__main__.py` so that `python -m tally` starts it.\n",
    "- A package `tally/` with `__main__.py` so that `python -m tally` starts it.\n"
    "- Read the port from the environment; never hard-code timeouts below one second.\n",
).replace(
    "Test both endpoints with the standard library only.\n",
    "Test both endpoints with the standard library only, including an empty body\n"
    "and a body of 10 000 words. Never sleep in tests.\n",
)

SPEC_V3 = SPEC_V2.replace("Tally counts words. It is a fixture organism for the TUI tests.",
                          "Tally counts words quickly. It is a fixture organism for the TUI tests.")

T0 = "2026-01-15T09:00:00.000Z"


@contextmanager
def fixed_clock() -> Iterator[None]:
    """Replace the store's clock with a deterministic ticking one."""
    state = {"n": 0}

    def tick() -> str:
        state["n"] += 1
        n = state["n"]
        return f"2026-01-15T{9 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"

    with mock.patch("core.store.utcnow", tick), mock.patch("core.models.utcnow", tick):
        yield


def _files(gen: int, broken: str | None) -> dict[str, bytes]:
    greet = "ok" if gen % 3 else "ok"
    server = f'''"""Tally server (generation {gen})."""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

GENERATION = int(os.environ.get("CAMBRIAN_GENERATION", "0") or 0)


def count_words(text: str) -> int:
    return len(text.split()){" + 1" if broken == "test" else ""}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self._send(200, {{"status": "{greet}", "generation": GENERATION}})
        else:
            self._send(404, {{"error": "not-found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length).decode("utf-8")
        self._send(200, {{"words": count_words(body)}})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(data)


def main(port: int = {8410 if broken != "health" else 8411}) -> None:
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()
'''
    tests = f'''from tally.server import count_words


def test_counts_words():
    assert count_words("a b c") == 3


def test_empty():
    assert count_words("") == 0


def test_generation_{gen}():
    assert count_words("one two") == 2
'''
    main = "from tally.server import main\n\nmain()\n"
    if broken == "build":
        main = "from tally.server import main\n\nmain(\n"
    return {
        "tally/__init__.py": b"",
        "tally/__main__.py": main.encode(),
        "tally/server.py": server.encode(),
        "tests/test_server.py": tests.encode(),
        "pytest.ini": b"[pytest]\ntestpaths = tests\n",
        "spec/tally.md": SPEC_V1.encode(),
    }


def _report(gen: int, broken: str | None) -> dict:
    stages = ["manifest", "build", "test", "start", "health"]
    checks: dict = {}
    for st in stages:
        passed = True
        if broken == st:
            passed = False
        entry: dict = {"passed": passed, "duration_ms": 40 + 17 * stages.index(st) + gen % 7}
        if st == "test":
            entry["tests_run"] = 3
            entry["tests_passed"] = 1 if broken == "test" else 3
        if st == "health":
            entry["vectors"] = [{"name": "health-ok", "passed": passed,
                                 **({"status": 200} if passed else {"error": "connection refused on port 8410"})}]
            entry["contracts"] = []
        checks[st] = entry
        if not passed:
            break
    rep: dict = {
        "generation": gen,
        "status": "viable" if broken is None else "non-viable",
        "failure_stage": broken or "none",
        "checks": checks,
        "fitness": {"tests_run": 3, "test_pass_rate": 1.0 if broken != "test" else 0.33, "source_lines": 60 + gen},
        "completed_at": T0,
    }
    if broken:
        failures = []
        summary = f"{broken} stage failed"
        stdout = ""
        stderr = ""
        exit_code = 1
        if broken == "test":
            summary = "2 of 3 tests failed"
            failures = [
                {"test": "tests/test_server.py::test_counts_words", "error": "AssertionError: assert 4 == 3",
                 "file": "tests/test_server.py", "line": 5},
                {"test": f"tests/test_server.py::test_generation_{gen}", "error": "AssertionError: assert 3 == 2",
                 "file": "tests/test_server.py", "line": 13},
            ]
            stdout = ("============================= test session starts ==============================\n"
                      "collected 3 items\n\ntests/test_server.py F.F                                  [100%]\n\n"
                      "=================================== FAILURES ===================================\n"
                      "______________________________ test_counts_words _______________________________\n"
                      "    def test_counts_words():\n>       assert count_words(\"a b c\") == 3\n"
                      "E       AssertionError: assert 4 == 3\n\n"
                      "=========================== short test summary info ============================\n"
                      "FAILED tests/test_server.py::test_counts_words - AssertionError: assert 4 == 3\n"
                      f"FAILED tests/test_server.py::test_generation_{gen} - AssertionError: assert 3 == 2\n"
                      "========================= 2 failed, 1 passed in 0.05s =========================\n")
        elif broken == "build":
            summary = "compileall failed: tally/__main__.py line 3"
            stderr = ("*** Error compiling './tally/__main__.py'...\n  File \"./tally/__main__.py\", line 3\n"
                      "    main(\n        ^\nSyntaxError: '(' was never closed\n")
            failures = [{"test": "compileall", "error": "SyntaxError: '(' was never closed",
                         "file": "tally/__main__.py", "line": 3}]
        elif broken == "health":
            summary = "1 of 1 acceptance vectors failed"
            stderr = "Serving on 0.0.0.0:8411\n"
            exit_code = None
        rep["diagnostics"] = {"stage": broken, "summary": summary, "exit_code": exit_code,
                              "failures": failures, "stdout_tail": stdout, "stderr_tail": stderr}
    return rep


def _log_lines(gen: int, broken: str | None) -> list[tuple[str, list[str]]]:
    out = [("rig", [f"[rig] generation {gen}: fresh container, backend docker",
                    "[rig] stage manifest: ok"]),
           ("stdout", [f"building generation {gen}", "compileall: 4 files"])]
    if broken == "build":
        out.append(("stderr", ["SyntaxError: '(' was never closed"]))
        return out
    out.append(("stdout", ["collected 3 items", "tests/test_server.py " + ("F.F" if broken == "test" else "...")]))
    if broken == "test":
        out.append(("stderr", ["2 failed, 1 passed in 0.05s"]))
        return out
    out.append(("rig", ["[rig] stage start: process alive, port open"]))
    if broken == "health":
        out.append(("stderr", ["health-ok: connection refused on port 8410"]))
    else:
        out.append(("rig", ["[rig] health: 1/1 vectors passed", "[rig] viable"]))
    return out


def seed_small(home: Path, *, generations: int = 40, running: bool = True) -> dict:
    """A completed campaign (with artifacts, logs, reports, LLM calls), a running one, and
    three spec versions. Returns facts the tests assert on."""
    home.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    facts: dict = {"failed": [], "promoted": [], "campaign": "c-tally-001", "running_campaign": "c-tally-002"}
    with fixed_clock(), Store.open(db_path(home)) as st:
        v1 = st.add_spec(SPEC_V1, label="tally-v1")
        v2 = st.add_spec(SPEC_V2, parent_hash=v1.hash, origin="amendment", label="tally-v2")
        v3 = st.add_spec(SPEC_V3, parent_hash=v2.hash, origin="mutation", label="tally-v3")
        facts["specs"] = [v1.hash, v2.hash, v3.hash]
        settings = {"spec_hash": v2.hash, "generations": generations, "parallelism": 2, "provider": "sim",
                    "model": "sim-1", "seed": 7, "max_retries": 1, "budget_usd": 5.0, "budget_tokens": 2_000_000,
                    "budget_wall_s": None, "backend": "docker"}
        st.create_campaign("c-tally-001", v2.hash, settings)
        st.set_campaign_state("c-tally-001", "running")
        best = None
        for gen in range(generations):
            roll = rng.random()
            broken = None if (gen == 0 or roll < 0.55) else ("test" if roll < 0.8 else "build" if roll < 0.92
                                                             else "health")
            st.create_generation(spec_hash=v2.hash, campaign_id="c-tally-001", parent=best, number=gen,
                                 attempt=0 if broken is None else gen % 2)
            st.record_artifact(gen, _files(gen, broken))
            for stream, lines in _log_lines(gen, broken):
                st.append_log(gen, stream, lines)
            st.record_llm_call(LLMCall(generation=gen, campaign_id="c-tally-001", provider="sim", model="sim-1",
                                       input_tokens=3000 + 37 * gen, output_tokens=1800 + 11 * gen,
                                       cost_usd=round(0.004 + 0.0001 * gen, 6), simulated=True,
                                       started_at=T0, latency_ms=900 + gen))
            st.record_report(gen, _report(gen, broken))
            if broken is None:
                st.set_outcome(gen, "promoted")
                facts["promoted"].append(gen)
                best = gen
            else:
                st.set_outcome(gen, "failed", reason=f"non-viable at {broken}")
                facts["failed"].append(gen)
        st.set_campaign_state("c-tally-001", "completed", reason="all generations done")

        settings2 = dict(settings, spec_hash=v3.hash, generations=10, seed=8)
        st.create_campaign("c-tally-002", v3.hash, settings2)
        if running:
            st.set_campaign_state("c-tally-002", "running")
            base = generations
            st.create_generation(spec_hash=v3.hash, campaign_id="c-tally-002", parent=None, number=base)
            st.record_artifact(base, _files(base, None))
            st.record_report(base, _report(base, None))
            st.set_outcome(base, "promoted")
            facts["promoted"].append(base)
            st.create_generation(spec_hash=v3.hash, campaign_id="c-tally-002", parent=base, number=base + 1)
            st.append_log(base + 1, "rig", [f"[rig] generation {base + 1}: fresh container, backend docker"])
            st.append_log(base + 1, "stdout", ["building generation", "running tests…"])
            facts["in_progress"] = base + 1
        facts["v1"], facts["v2"], facts["v3"] = v1.hash, v2.hash, v3.hash
    return facts


def fake_report(i: int, rng: random.Random) -> tuple[dict, bool, str]:
    viable = rng.random() < 0.6
    stage = "none" if viable else rng.choice(["test", "test", "build", "health"])
    checks = {"manifest": {"passed": True, "duration_ms": 3},
              "build": {"passed": stage != "build", "duration_ms": 400}}
    if stage != "build":
        checks["test"] = {"passed": stage != "test", "duration_ms": 2000, "tests_run": 12,
                          "tests_passed": 12 if stage != "test" else 9}
    rep = {"generation": i, "status": "viable" if viable else "non-viable", "failure_stage": stage,
           "checks": checks, "fitness": {"tests_run": 12}, "completed_at": T0}
    if not viable:
        rep["diagnostics"] = {"stage": stage, "summary": f"{stage} failed", "exit_code": 1,
                              "failures": [{"test": "tests/test_a.py::test_x", "error": "AssertionError"}],
                              "stdout_tail": "F" * 80, "stderr_tail": ""}
    return rep, viable, stage


def seed_bulk(home: Path, n: int, *, campaign_id: str = "c-bulk", seed: int = 1, batch: int = 5000,
              state: str = "completed") -> dict:
    """n finished generations in one campaign, lineage like the engine's (parent = best)."""
    home.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with Store.open(db_path(home)) as st:
        v = st.add_spec(SPEC_V1, label="bulk")
        st.create_campaign(campaign_id, v.hash, {"spec_hash": v.hash, "generations": n, "parallelism": 4,
                                                 "provider": "sim", "model": "sim-1", "seed": seed,
                                                 "budget_usd": 100.0})
        st.set_campaign_state(campaign_id, state)
        best = None
        rows = []
        for i in range(n):
            rep, viable, _stage = fake_report(i, rng)
            rows.append({"number": i, "parent": best, "campaign_id": campaign_id, "spec_hash": v.hash,
                         "outcome": "promoted" if viable else "failed", "report": rep, "created_at": T0})
            if viable:
                best = i
            if len(rows) >= batch:
                st.bulk_insert_generations(rows)
                rows = []
        if rows:
            st.bulk_insert_generations(rows)
    return {"campaign": campaign_id, "spec": v.hash}


if __name__ == "__main__":  # pragma: no cover - handy for manual runs
    import sys

    target = Path(sys.argv[1])
    print(json.dumps(seed_small(target), indent=1)[:400])
