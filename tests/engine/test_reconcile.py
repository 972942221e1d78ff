"""Engine start closes what a dead engine left: in_progress rows, undecided tested rows."""

from __future__ import annotations

from core.engine.reconcile import startup_reconcile
from core.store import Store


def test_dead_engines_leftovers_are_closed_with_reasons(tmp_path):
    with Store.open(tmp_path / "c.db") as s:
        spec = s.add_spec("# s\n")
        s.create_campaign("camp", spec.hash, {"provider": "sim"})
        s.set_campaign_runtime("camp", engine_pid=999_999_999)  # a pid that is not alive
        running = s.create_generation(spec_hash=spec.hash, campaign_id="camp")
        judged_ok = s.create_generation(spec_hash=spec.hash, campaign_id="camp")
        judged_bad = s.create_generation(spec_hash=spec.hash, campaign_id="camp")
        s.record_report(judged_ok.number, {"status": "viable", "failure_stage": "none"})
        s.record_report(judged_bad.number, {"status": "non-viable", "failure_stage": "test"})
        res = startup_reconcile(s, own_campaign="camp")
        assert sorted(res["closed_generations"]) == [running.number, judged_ok.number, judged_bad.number]
        g = s.generation(running.number)
        assert g.outcome.value == "interrupted" and "pid 999999999 died" in g.reason
        assert s.generation(judged_ok.number).outcome.value == "promoted"
        assert s.generation(judged_bad.number).outcome.value == "failed"
        assert "recorded verdict" in s.generation(judged_bad.number).reason
        assert not s.in_progress("camp") and not s.tested("camp")


def test_a_live_engines_work_is_left_alone(tmp_path):
    with Store.open(tmp_path / "c.db") as s:
        spec = s.add_spec("# s\n")
        s.create_campaign("live", spec.hash, {"provider": "sim"})
        assert s.acquire_lease("live")  # this process: alive, fresh heartbeat
        g = s.create_generation(spec_hash=spec.hash, campaign_id="live")
        res = startup_reconcile(s, own_campaign="other")
        assert res["closed_generations"] == []
        assert s.generation(g.number).outcome.value == "in_progress"
