"""The red team end to end, with the real rig: sim campaigns on spec/echo.md with
`redteam every`. Each viable generation gets one `redteam` call in the ledger (its own
generation's) and a second rig run of its own; the report carries the redteam block and the
summary its figures. With a threshold, a red team that confirms violations turns a viable
Echo non-viable under the rule `redteam_threshold` (forced here: the scripted answer's second
probe expects a reversal the spec does not give, so a correct Echo fails it)."""

from __future__ import annotations

import json

import pytest

from core.app import Cambrian
from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import REPO_ROOT, db_path
from core.llm.sim import SimProvider
from core.models import CampaignSettings
from core.store import Store

pytestmark = pytest.mark.docker

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
ROW = '| GET | /health | 200 | `{"status": "ok", "generation": N}` |'
REVERSE = "answers the text and its characters in reverse order"


class ForcedRedTeam(SimProvider):
    """The sim, with a scripted red team: one probe a correct Echo passes, one it fails."""

    def answer(self, req, model=None):
        if req.purpose != "redteam":
            return super().answer(req, model)
        probes = [{"name": "health-ok", "path": "/health", "expect": {"status": 200}, "relies_on": ROW},
                  {"name": "reverse-off-by-one", "path": "/reverse?text=abc",
                   "expect": {"status": 200, "body_contains": {"reversed": "cbd"}}, "relies_on": REVERSE}]
        return "```redteam-probes\n" + json.dumps(probes) + "\n```\n"


def _campaign(home, sim, n, seed, **kw):
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(
            spec_hash="-", generations=n, parallelism=1, provider="sim", model="sim-1", seed=seed,
            max_retries=0, backend="docker", examiner="off", redteam="every", **kw), ECHO)
    assert run_campaign(home, cid, provider_factory=lambda _s: sim) == "completed"
    return cid


def test_every_viable_generation_is_red_teamed_and_the_threshold_gates(tmp_path, rig_ready):
    home = tmp_path / "home"
    home.mkdir()
    correct = SimProvider(force_defects=[], force_habits={}, format_errors=False)
    cid = _campaign(home, correct, 2, 1)
    with Store.open(db_path(home)) as s:
        gens = s.generations(cid)
        calls = s.llm_calls(campaign_id=cid)
        assert [(c.purpose, c.generation) for c in calls] == [
            ("generate", gens[0].number), ("redteam", gens[0].number),
            ("generate", gens[1].number), ("redteam", gens[1].number)]
        for g in gens:
            rep = s.report(g.number)
            assert g.outcome.value == "promoted"  # no threshold: the score is only measured
            rt = rep["redteam"]
            assert rt["proposed"] == 6 and rt["unavailable"] is False and rt["rig_ms"] > 0
            assert rt["score"] == round(1 - rt["confirmed"] / 6, 4) and rep["fitness"]["redteam_score"] == rt["score"]
            (call,) = [c for c in calls if c.purpose == "redteam" and c.generation == g.number]
            assert rt["tokens"] == (call.input_tokens + call.output_tokens + call.cache_creation_input_tokens
                                    + call.cache_read_input_tokens) > 0
            for p in rt["probes"]:
                assert p["relies_on"] and "status" in p["expected"] and "status" in p["actual"]
            runs = [r.run_id for r in s.rig_runs(g.number)]
            assert runs == [f"{cid}.g{g.number}", f"{cid}.g{g.number}.redteam"]
            log = [c["text"] for c in s.log_chunks(g.number, after_id=0, limit=10_000)]
            marks = [i for i, t in enumerate(log) if f"[engine] the red team's run ({runs[1]})" in t]
            assert len(marks) == 1 and 0 < marks[0] < len(log) - 1  # between the two runs' lines
            assert "layers" not in rep or "redteam" not in rep["layers"]  # the first run ran no red team
    with Cambrian(home) as app:
        st = app.reads.campaign_status(cid)
        summ = app.reads.summary(cid)
        rt = st["summary"]["redteam"]
        assert rt == summ.redteam and rt["tested"] == 2 and rt["proposed"] == 12 and rt["mode"] == "every"
        assert rt["scores"]["min"] <= rt["mean_score"] <= rt["scores"]["max"]
        print(f"\nred team figures: {rt}")

    gated = _campaign(home, ForcedRedTeam(force_defects=[], force_habits={}, format_errors=False), 1, 2,
                      redteam_threshold=0.7)
    with Store.open(db_path(home)) as s:
        (g,) = s.generations(gated)
        rep = s.report(g.number)
        assert rep["redteam"]["confirmed"] == 1 and rep["redteam"]["score"] == 0.5
        failed = [p for p in rep["redteam"]["probes"] if not p["passed"]]
        assert [p["name"] for p in failed] == ["reverse-off-by-one"]
        assert failed[0]["actual"]["status"] == 200 and "cba" in failed[0]["actual"]["body_excerpt"]
        assert g.outcome.value == "failed" and g.status == "non-viable" and rep["failure_stage"] == "health"
        assert rep["stricter_rules"] == ["redteam_threshold"] and "[rule: redteam_threshold]" in g.reason
        assert "reverse-off-by-one" not in json.dumps(rep["diagnostics"])
    with Cambrian(home) as app:
        rt = app.reads.summary(gated).redteam
        assert (rt["tested"], rt["confirmed"], rt["failed_threshold"], rt["threshold"]) == (1, 1, 1, 0.7)
        # the inspector's Layers tab: the red team's probes, expected vs actual, with the score
        layers = {v.kind: v for v in app.reads.generation_detail(g.number).layers}
        assert set(layers) == {"sealed", "redteam"}  # echo's sealed vectors; the examiner was off
        red = layers["redteam"]
        assert (red.mode, red.passed, red.total) == ("every, gate below 0.70", 1, 2)
        assert red.note.startswith("score 0.50 = 1 − 1 confirmed / 2 proposed")
        bad = next(p for p in red.probes if not p.passed)
        assert (bad.name, bad.request, bad.expected, bad.actual) == (
            "reverse-off-by-one", "GET /reverse?text=abc", '200, body ⊇ {"reversed":"cbd"}', "200")
        assert bad.note == REVERSE and "cba" in bad.body_excerpt
        assert rep["verification"] == {"sealed": "gate", "examiner": "off", "redteam": "every",
                                       "redteam_threshold": 0.7}
