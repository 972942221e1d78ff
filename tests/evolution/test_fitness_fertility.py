"""Evolution with fitness "fertility" (issue 23): every campaign of the run asks its promoted
generations to breed, and a viable but infertile one counts as a failure in the counts the
optimizer and the acceptance test see."""

from __future__ import annotations

import pytest

from core.engine.summary import campaign_summary
from core.evolution import records as rec
from core.evolution.runs import create_run
from core.evolution.state import campaign_counts
from core.home import db_path
from core.store import Store
from tests.evolution.conftest import ECHO
from tests.evolution.test_loop import RUN, SMALL, run

BREEDING_ECHO = ECHO.replace("---\n", "---\nreproduce: {path: /generate, output-env: OUT_DIR}\n", 1)


def _campaign(store: Store, cid: str, fitness: str, outcomes: list[str], infertile: list[int]) -> None:
    spec = store.add_spec(ECHO, label="echo").hash
    store.create_campaign(cid, spec, {"spec_hash": spec, "generations": len(outcomes), "fitness": fitness,
                                      "reproduction": "every"})
    for o in outcomes:
        g = store.create_generation(spec_hash=spec, campaign_id=cid)
        store.record_report(g.number, {"generation": g.number, "status": "viable" if o == "promoted" else "non-viable",
                                       "failure_stage": "none" if o == "promoted" else "test", "checks": {},
                                       "completed_at": "2026-12-06T00:00:00+00:00"})
        store.set_outcome(g.number, o, o, failure_stage=None if o == "promoted" else "test")
        if o == "promoted":
            status = "infertile" if g.number in infertile else "fertile"
            store.record_reproduction(g.number, campaign_id=cid, status=status, stage=None, reason=None,
                                      offspring=None, request={}, gateway={}, tokens=0, cost_usd=0.0, rig_ms=0)


def test_counts_under_fertility_treat_a_viable_infertile_offspring_as_a_failure(store):
    outcomes = ["promoted", "promoted", "failed", "promoted", "promoted"]
    _campaign(store, "c-viab", "viability", outcomes, infertile=[0, 3])
    _campaign(store, "c-fert", "fertility", outcomes, infertile=[5, 8])
    assert campaign_summary(store, "c-fert")["viable"] == 4
    assert (campaign_counts(store, "c-viab").viable, campaign_counts(store, "c-viab").judged) == (4, 5)
    assert (campaign_counts(store, "c-fert").viable, campaign_counts(store, "c-fert").judged) == (2, 5)


def test_a_spec_that_cannot_breed_is_refused_for_fertility(store):
    with pytest.raises(ValueError, match="declares no `reproduce`"):
        create_run(store, ECHO, run_id=RUN, fitness="fertility", **{**SMALL, "backend": "docker"})
    with pytest.raises(ValueError, match="docker backend"):
        create_run(store, BREEDING_ECHO, run_id=RUN, fitness="fertility", **SMALL)
    assert store.observations(RUN) == []


def test_a_fertility_run_breeds_in_every_campaign_and_counts_infertile_as_failed(home):
    """The fake rig judges without Docker and never breeds, so every promoted generation
    is infertile ("it wrote no artifact"): the run's counts must be all failures although
    the campaigns' own viability is not."""
    with Store.open(db_path(home)) as s:
        create_run(s, BREEDING_ECHO, run_id=RUN, fitness="fertility",
                   **{**SMALL, "backend": "docker", "max_observations": 2})
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        children = rec.child_campaigns(s, RUN)
        assert children
        promoted = 0
        for c in children:
            cid = c["id"]
            settings = s.campaign(cid)["settings"]
            assert (settings["reproduction"], settings["fitness"]) == ("every", "fertility")
            viable = campaign_summary(s, cid)["viable"]
            promoted += viable
            tests = s.reproductions(cid)
            assert len(tests) == viable and all(t["status"] == "infertile" for t in tests)
            assert campaign_counts(s, cid).viable == 0
        assert promoted > 0  # the campaigns had viable offspring: only fertility made them fail
        assert all(o.viability_rate in (None, 0.0) for o in s.observations(RUN))


# --- fitness "verified" (issue 24): Layer 1 and the dual-blind examiner -------------------------------


def _examined(store: Store, cid: str, fitness: str, failing: dict[int, list[str]], n: int = 4) -> list[int]:
    """n viable generations whose examiner results fail the names in ``failing[i]``."""
    spec = store.add_spec(ECHO, label="echo").hash
    store.create_campaign(cid, spec, {"spec_hash": spec, "generations": n, "fitness": fitness,
                                      "examiner": "score", "model": "sim-1"})
    out = []
    for i in range(n):
        g = store.create_generation(spec_hash=spec, campaign_id=cid)
        results = [{"name": name, "passed": name not in failing.get(i, [])} for name in ("a", "b", "c")]
        store.record_report(g.number, {"generation": g.number, "status": "viable", "failure_stage": "none",
                                       "checks": {"health": {"passed": True, "duration_ms": 1, "examiner": results}},
                                       "examiner_set": {"model": "sim-1"},
                                       "completed_at": "2026-12-06T00:00:00+00:00"})
        store.set_outcome(g.number, "promoted", "viable")
        out.append(g.number)
    return out


def _pair(c) -> tuple[int, int]:
    return c.viable, c.judged


def test_counts_under_verified_treat_a_viable_generation_failing_an_examiner_probe_as_a_failure(store):
    from core.examiner import records
    from core.examiner.records import ProbeSet

    _examined(store, "c-plain", "viability", {0: ["a"], 2: ["b"]})
    _examined(store, "c-verified", "verified", {0: ["a"], 2: ["b"]})
    assert _pair(campaign_counts(store, "c-plain")) == (4, 4)
    assert _pair(campaign_counts(store, "c-verified")) == (2, 4)
    # a person dismisses probe "a" as wrong: generation 0 counts again, read afresh
    spec = store.campaign("c-verified")["spec_hash"]
    records.save(store, ProbeSet(spec_hash=spec, model="sim-1", state="ready", probes=[
        {"name": k, "method": "GET", "path": "/", "expect": {"status": 200}} for k in "abc"]))
    records.dismiss(store, spec, "sim-1", "a", "the spec never says so", {"ran": 2, "failed": 1})
    assert _pair(campaign_counts(store, "c-verified")) == (3, 4)


def test_a_verified_run_scores_the_examiner_in_every_campaign(home):
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id=RUN, fitness="verified", **{**SMALL, "max_observations": 2})
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        children = rec.child_campaigns(s, RUN)
        assert children
        for c in children:
            settings = s.campaign(c["id"])["settings"]
            assert (settings["examiner"], settings["fitness"]) == ("score", "verified")
            # one examine call per spec version the run made, never one per generation
        examines = [c for c in s.llm_calls() if c.purpose == "examine"]
        specs = {s.campaign(c["id"])["spec_hash"] for c in children}
        assert 1 <= len(examines) <= len(specs)
