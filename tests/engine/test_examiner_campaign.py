"""The examiner end to end, with the real rig: sim campaigns on spec/echo.md. One examine
call serves every campaign of the spec; the rig runs the probes as the examiner layer and the
reports, `campaign status` and the app summary carry the results and examiner_pass_rate; the
sim's wrong probe fails everywhere, gates a correct Echo out under `gate` (rule
examiner_probes, withheld from the writer), and once dismissed counts no more."""

from __future__ import annotations

import pytest

from core.app import Cambrian
from core.app.commands import DismissProbe
from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import REPO_ROOT, db_path
from core.llm.sim import SimProvider
from core.models import CampaignSettings
from core.store import Store

pytestmark = pytest.mark.docker

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
WRONG = "echo-wrong-method-405"  # the sim-1 examiner expects 404 here (core/llm/sim/README.md)


def _campaign(home, sim, n, examiner, seed):
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(
            spec_hash="-", generations=n, parallelism=1, provider="sim", model="sim-1", seed=seed,
            max_retries=0, backend="docker", examiner=examiner), ECHO)
    assert run_campaign(home, cid, provider_factory=lambda _s: sim) == "completed"
    return cid


def test_examiner_probes_are_made_once_run_by_the_rig_and_dismissible(tmp_path, rig_ready):
    home = tmp_path / "home"
    home.mkdir()
    sim = SimProvider(force_defects=[], force_habits={}, format_errors=False)  # a correct Echo
    scored = _campaign(home, sim, 2, "score", 1)
    gated = _campaign(home, sim, 1, "gate", 2)

    with Store.open(db_path(home)) as s:
        calls = [c for cid in (scored, gated) for c in s.llm_calls(campaign_id=cid)]
        assert [c.purpose for c in calls] == ["generate", "examine", "generate", "generate"]
        assert calls[1].campaign_id == scored and calls[1].generation is None
        for g in s.generations(scored):  # scored: Layer 1 decides, the wrong probe only measured
            rep = s.report(g.number)
            assert g.outcome.value == "promoted" and rep["layers"]["examiner"] == {"gate": False, "probes": 7}
            results = {r["name"]: r["passed"] for r in rep["checks"]["health"]["examiner"]}
            assert len(results) == 7 and [k for k, ok in results.items() if not ok] == [WRONG]
            assert rep["fitness"]["examiner_pass_rate"] == round(6 / 7, 4) and rep["fitness"]["examiner_total"] == 7
            assert rep["examiner_set"] == {"model": "sim-1", "spec_hash": g.spec_hash, "probes": 7, "gate": False}
            # the campaign's viability policy, as it judged this report
            assert rep["verification"] == {"sealed": "gate", "examiner": "score", "redteam": "off",
                                           "redteam_threshold": None}
        scored_numbers = [g.number for g in s.generations(scored)]
        sealed_total = s.report(scored_numbers[0])["fitness"]["sealed_total"]
        (g,) = s.generations(gated)  # gated: the wrong probe fails a correct artifact
        rep = s.report(g.number)
        assert g.outcome.value == "failed" and rep["failure_stage"] == "health"
        assert rep["stricter_rules"] == ["examiner_probes"]
        assert "1 examiner check(s) failed (withheld from the writer)" in rep["diagnostics"]["summary"]
        assert WRONG not in str(rep["diagnostics"]) and WRONG not in (g.reason or "")
        spec_hash = g.spec_hash

    with Cambrian(home) as app:
        st = app.reads.campaign_status(scored)
        summ = app.reads.summary(scored)
        assert st["summary"]["examiner_pass_rate"] == summ.examiner_pass_rate == round(12 / 14, 4)
        ex = st["summary"]["examiner"]
        assert (ex["mode"], ex["probes"], ex["judged"], ex["viable"], ex["viable_all_passed"]) == ("score", 7, 2, 2, 0)
        assert ex["suspects"] == []  # 3 runs so far: not enough evidence
        assert ex["call"]["ids"] == [calls[1].id]
        # the inspector's Layers tab: each layer's probes, expected vs actual
        first = app.reads.summary(scored)
        shown = app.reads.generation_detail(scored_numbers[0])
        assert [(v.kind, v.mode, v.passed, v.total) for v in shown.layers] == [
            ("sealed", "gate", sealed_total, sealed_total), ("examiner", "score", 6, 7)]
        wrong = next(p for p in shown.layers[1].probes if p.name == WRONG)
        assert (wrong.request, wrong.expected, wrong.actual, wrong.passed) == ("DELETE /echo", "404", "405", False)
        assert set(first.layer_series) == {"visible", "sealed", "examiner"}
        assert first.layer_series["examiner"] == (scored_numbers, [round(6 / 7, 4)] * 2)
        done = app.run(DismissProbe(spec=spec_hash, probe=WRONG, reason="the spec says 405"))
        assert done.dismissals[0]["evidence"] == {"ran": 3, "failed": 3}
        # dismissed: it stops counting in the summary, the chart and the tab (the row stays, marked)
        after = app.reads.summary(scored)
        assert after.examiner_pass_rate == 1.0 and after.layer_series["examiner"][1] == [1.0, 1.0]
        view = app.reads.generation_detail(scored_numbers[0]).layers[1]
        assert (view.passed, view.total) == (6, 6)
        assert next(p for p in view.probes if p.name == WRONG).dismissed

    # dismissed: the next gated campaign runs 6 probes and the correct Echo is viable
    again = _campaign(home, sim, 1, "gate", 3)
    with Store.open(db_path(home)) as s:
        assert [c.purpose for c in s.llm_calls(campaign_id=again)] == ["generate"]  # reused
        (g,) = s.generations(again)
        rep = s.report(g.number)
        assert g.outcome.value == "promoted" and rep["layers"]["examiner"] == {"gate": True, "probes": 6}
        assert WRONG not in {r["name"] for r in rep["checks"]["health"]["examiner"]}
        assert rep["fitness"]["examiner_pass_rate"] == 1.0
    with Cambrian(home) as app:
        assert app.reads.examiner_probes(spec_hash)["sets"][0]["probes"][5]["dismissal"]["evidence"] == {
            "ran": 3, "failed": 3}
