"""Campaign throughput vs parallelism, with the fake LLM at latency L and the real rig.

The engine talks to the loopback fake Messages API through the real anthropic SDK; the
fake answers with sim-written code, so every generation is really built, tested and
probed in a fresh Docker container. Prints generations/hour for each P and the speedup
over P=1 (measured in the same run). Never pass/fail.

    .venv/bin/python bench/throughput.py [--latency 10] [--ps 1,2,4,8] [--n 48]

Every P runs the same work: N generations (default 48) of one campaign in a fresh home, so
the sim draws the same defects for generation k at every P. Rate = N / wall time from spawn
to the campaign's end, tails included (a generation that never opens its port holds its
rig slot for the 30 s readiness timeout). CAMBRIAN_RIG_SLOTS sets the engine's rig slots.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.engine.launch import create_campaign, spawn_engine  # noqa: E402
from core.home import REPO_ROOT, db_path  # noqa: E402
from core.llm.base import LLMRequest  # noqa: E402
from core.llm.fake_server import FakeAnthropicThread  # noqa: E402
from core.llm.sim import SimProvider  # noqa: E402
from core.models import CampaignSettings  # noqa: E402
from core.store import Store  # noqa: E402

_SIM = SimProvider()


def sim_responder(body: dict) -> str:
    system = body.get("system") or ""
    if isinstance(system, list):
        system = "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    text = " ".join(str(b.get("text", "")) if isinstance(b, dict) else str(b)
                    for m in body.get("messages", []) for b in
                    (m["content"] if isinstance(m["content"], list) else [m["content"]]))
    m = re.search(r"generation (\d+)", text)
    req = LLMRequest(model="sim-1", system=system, messages=body.get("messages", []),
                     metadata={"seed": 5, "generation": int(m.group(1)) if m else 0, "attempt": 0})
    return _SIM.answer(req)


def run_one(home: Path, spec: str, p: int, n: int) -> tuple[float, dict]:
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(
            spec_hash="sha256:" + "0" * 64, generations=n, parallelism=p, provider="anthropic",
            model="claude-haiku-4-5", seed=5, max_retries=0, max_tokens=8000, backend="docker").model_dump(), spec)
    t0 = time.perf_counter()
    spawn_engine(home, cid)
    with Store.open(db_path(home)) as s:
        while s.campaign(cid)["state"] not in ("completed", "stopped", "aborted", "crashed"):
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        c = s.campaign(cid)
        outcomes = s.outcome_counts(campaign_id=cid)
    if c["state"] != "completed":
        raise SystemExit(f"campaign at P={p} ended {c['state']}: {c['reason']}")
    return wall, outcomes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=10.0, help="fake LLM latency per call, seconds")
    ap.add_argument("--ps", default="1,2,4,8")
    ap.add_argument("--n", type=int, default=48, help="generations per P (the same work at every P)")
    ap.add_argument("--spec", default=str(REPO_ROOT / "spec" / "echo.md"))
    a = ap.parse_args()
    spec = Path(a.spec).read_text()
    srv = FakeAnthropicThread(sim_responder, latency=a.latency)
    srv.start()
    os.environ["ANTHROPIC_BASE_URL"] = srv.base_url
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-bench-loopback-only"
    from core.engine.runner import rig_slots

    print(f"fake LLM latency {a.latency:.1f} s; rig: real Docker; cores {os.cpu_count()}; "
          f"rig slots {rig_slots()}; N {a.n} per P; spec {Path(a.spec).name}")
    results = {}
    try:
        for p in [int(x) for x in a.ps.split(",")]:
            n = a.n
            with tempfile.TemporaryDirectory() as d:
                wall, outcomes = run_one(Path(d), spec, p, n)
                results[p] = n / wall * 3600
                print(f"P={p:<2} N={n:<3} wall {wall:6.1f} s  {results[p]:7.1f} generations/hour  outcomes {outcomes}",
                      flush=True)
    finally:
        srv.stop()
    base = results.get(1)
    if base:
        for p, rate in results.items():
            print(f"speedup P={p}: {rate / base:.2f}x over P=1")


if __name__ == "__main__":
    main()
