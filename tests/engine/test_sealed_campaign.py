"""Sealed vectors end to end, with the real rig: a sim campaign on a spec whose sealed
vectors carry a unique marker. The marker reaches no prompt (first attempt or retry), no
ledger row, no diagnostic or reason, no artifact file — while the rig reports the sealed
results apart, gates on them by the named rule, and the campaign reports the
generalisation gap."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core.app import Cambrian
from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import REPO_ROOT, db_path
from core.llm.sim import SimProvider
from core.models import CampaignSettings
from core.spec import parse_spec
from core.store import Store

pytestmark = pytest.mark.docker

MARK = "ZQ-SEALED-0b5e91"
ECHO = (REPO_ROOT / "spec" / "echo.md").read_bytes().decode()
# Two more sealed vectors: one the prose states and the sim's Echo does not do (so it fails
# on every artifact), one that passes and makes the service log the marker (its path).
EXTRA = f"""
```spec-vector
name: health-names-the-service-{MARK}
description: "{MARK}: GET /health also answers service echo"
method: GET
path: /health
expect:
  status: 200
  body_contains:
    service: echo
```

```spec-vector
name: unknown-{MARK}-is-404
method: GET
path: /no-{MARK}
expect:
  status: 404
```
<!-- END FROZEN: sealed-vectors -->
"""
SPEC = ECHO.replace("<!-- END FROZEN: sealed-vectors -->\n", EXTRA.lstrip("\n")).replace(
    "- `GET /health`: `generation` is the integer value",
    '- `GET /health` also answers `"service": "echo"`; `generation` is the integer value')


class Recorder:
    """The campaign's provider: the sim, every request it is asked kept as JSON."""

    def __init__(self, inner):
        self.inner = inner
        self.bodies: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def complete(self, req, on_delta=None):
        self.bodies.append({"system": req.system, "messages": req.messages, "metadata": req.metadata,
                            "purpose": req.purpose, "model": req.model})
        return await self.inner.complete(req, on_delta)


def _rows_with(db, needle: str) -> dict[str, list[str]]:
    """{table: [column, ...]} of every text or blob value in the database holding needle."""
    found: dict[str, list[str]] = {}
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            cur = conn.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            for row in cur:
                for col, value in zip(cols, row):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and needle in value:
                        # a blob by its hash (the stored spec text is one), else the column
                        found.setdefault(t, []).append(row[0] if t == "blobs" else col)
    finally:
        conn.close()
    return found


def test_a_sealed_campaign_never_shows_the_writer_a_sealed_byte(tmp_path, rig_ready):
    spec = parse_spec(SPEC)
    assert len(spec.sealed) == 5 and MARK not in spec.visible_text and MARK in SPEC
    home = tmp_path / "home"
    home.mkdir()
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(
            spec_hash="-", generations=2, parallelism=1, provider="sim", model="sim-1", seed=5,
            max_retries=1, backend="docker"), SPEC)
    rec = Recorder(SimProvider(force_defects=[], force_habits={}, format_errors=False))
    assert run_campaign(home, cid, provider_factory=lambda _s: rec) == "completed"

    # the writer: two generate calls (the second an informed retry), neither with a sealed
    # byte; between them the examiner's one call (before the first verdict), which sees the
    # writer-visible spec only: no sealed byte and no code either
    assert [b["purpose"] for b in rec.bodies] == ["generate", "examine", "generate"]
    assert "<retry" in json.dumps(rec.bodies[2]) and "sealed check(s) failed" in json.dumps(rec.bodies[2])
    examine = json.dumps(rec.bodies[1])
    asked = rec.bodies[1]["system"] + "".join(b["text"] for b in rec.bodies[1]["messages"][0]["content"])
    assert len(rec.bodies[1]["messages"]) == 1  # one user turn: the spec and the instruction
    assert rec.bodies[1]["messages"][0]["content"][0]["text"].endswith("\n" + spec.visible_text + "\n</spec>")
    assert "<retry" not in examine and "</file:end>\n<file" not in examine
    for body in rec.bodies:
        text = json.dumps(body)
        assert MARK not in text and "sealed-vectors" not in text and "reverse-counts-code-points" not in text

    with Store.open(db_path(home)) as s:
        gens = s.generations(cid)
        assert [(g.attempt, g.outcome.value) for g in gens] == [(0, "failed"), (1, "failed")]
        for g in gens:
            rep = s.report(g.number)
            assert rep["status"] == "non-viable" and rep["failure_stage"] == "health"
            assert rep["stricter_rules"] == ["sealed_vectors"]
            assert rep["layers"]["sealed"] == {"gate": True, "probes": 5}
            assert rep["layers"]["examiner"] == {"gate": False, "probes": 7}  # scored, never gating
            health = rep["checks"]["health"]
            assert [v["passed"] for v in health["vectors"]] == [True] * 5  # every visible one
            assert [(r["name"], r["passed"]) for r in health["sealed"]] == [
                ("wrong-method-is-405", True), ("reverse-counts-code-points", True),
                ("reverse-empty-text", True), (f"health-names-the-service-{MARK}", False),
                (f"unknown-{MARK}-is-404", True)]
            assert rep["fitness"]["sealed_pass_rate"] == 0.8 and rep["fitness"]["vector_pass_rate"] == 1.0
            assert MARK not in json.dumps(rep["diagnostics"]) and MARK not in (g.reason or "")
            assert "1 sealed check(s) failed" in rep["diagnostics"]["summary"]
            files = s.artifact_files(g.artifact_hash)
            assert files and not [p for p, data in files.items() if MARK.encode() in data]
            code = [p for p in files if p.endswith(".py")]
            # no code: no line of the artifact's source (that is not also spec text) was asked
            lines = {ln.strip() for p in code for ln in files[p].decode().splitlines()
                     if len(ln.strip()) > 30 and ln.strip() not in spec.visible_text}
            assert len(lines) > 20 and not [ln for ln in lines if ln in asked]
            copy = files["spec/echo.md"].decode()
            assert copy == spec.visible_text and "sealed-vectors" not in copy
        assert not [c for c in s.llm_calls(campaign_id=cid) if MARK in json.dumps(c.model_dump(mode="json"))]
    # where the marker is at all: the stored spec (a blob), the reports' sealed results (for
    # people), and the rig log (the service logged the probe's path; people read it, no LLM does)
    where = _rows_with(db_path(home), MARK)
    assert set(where) <= {"blobs", "generations", "log_chunks"}, where
    assert where["blobs"] == [spec.hash], where  # the stored spec version, no artifact file
    assert set(where["generations"]) == {"report_json"}, where

    # the campaign's figures: visible 10/10, sealed 8/10, gap +0.2
    with Cambrian(home) as cam:
        st = cam.reads.campaign_status(cid)
        summ = cam.reads.summary(cid)
    g = st["summary"]["sealed"]
    assert g["visible"] == [10, 10] and g["sealed"] == [8, 10] and g["gap"] == 0.2
    assert summ.sealed == g
