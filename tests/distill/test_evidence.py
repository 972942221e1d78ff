"""Evidence is counted per distinct artifact, and a small campaign is told exactly what it
can and cannot show: copies, conflicting copies, small groups, power, the descriptive
ranking, and the original Cambrian's history (8 viable / 2 failed)."""

from __future__ import annotations

import pytest
from scipy.stats import fisher_exact

from core.distill import distill_campaign
from core.distill import power as P
from core.distill.cli import render_report
from core.home import db_path
from core.store import Store
from tests.distill import original
from tests.distill.synth import SPEC, add_generation, generation_files, planted_campaign


@pytest.fixture
def store(tmp_path):
    s = Store.open(db_path(tmp_path / "home"))
    yield s
    s.close()


def _twice(store: Store, source: str, target: str) -> None:
    """A campaign holding every artifact of ``source`` twice (as a repeated import would)."""
    spec_hash = store.campaign(source)["spec_hash"]
    store.create_campaign(target, spec_hash, {})
    for g in store.generations(source):
        files, report = store.artifact_files(g.artifact_hash), store.report(g.number)
        for _ in range(2):  # the same artifact and the same recorded verdict
            copy = store.create_generation(spec_hash=spec_hash, campaign_id=target)
            store.record_artifact(copy.number, files)
            store.record_report(copy.number, report)
            store.set_outcome(copy.number, g.outcome.value)


def _tests(report) -> dict:
    return {(f["feature"], comp): (f["groups"], t.get("tested"), t.get("p"), t.get("q"), t.get("direction"))
            for f in report.to_json()["features"] for comp, t in f["tests"].items()}


def test_two_copies_of_each_artifact_count_as_one(store):
    planted_campaign(store, n_per_group=12, broken=())
    _twice(store, "c-planted", "c-twice")
    once = distill_campaign(store, "c-planted", create_amendments=False)
    twice = distill_campaign(store, "c-twice", create_amendments=False)
    assert twice.generations == 2 * once.generations == 48
    assert len(twice.analysed) == len(once.analysed) == 24
    assert len(twice.copies) == 24 and all(c["same_as"] < c["generation"] for c in twice.copies)
    # the same counts, the same p- and q-values, feature by feature and comparison by comparison
    assert _tests(twice) == _tests(once)
    assert [(t.feature, t.comparison, t.p, t.q) for t in twice.significant] == \
           [(t.feature, t.comparison, t.p, t.q) for t in once.significant]
    assert any(t.feature == "monotonic_clock" for t in once.significant)
    # counted per copy, the evidence would have been stronger than it is
    row = next(f for f in once.to_json()["features"] if f["feature"] == "monotonic_clock")
    g = row["groups"]
    per_copy = fisher_exact([[2 * g["viable"]["present"], 2 * (g["viable"]["n"] - g["viable"]["present"])],
                             [2 * g["failed"]["present"], 2 * (g["failed"]["n"] - g["failed"]["present"])]]).pvalue
    assert per_copy < row["tests"]["viable_vs_failed"]["p"] / 10
    assert "copies of them counted once" in render_report(twice.to_json())


def test_copies_with_conflicting_verdicts_are_no_evidence(store):
    spec_hash = store.add_spec(SPEC).hash
    store.create_campaign("c-flaky", spec_hash, {})
    files = generation_files(monotonic=True, dataclass=True, tag=1)
    a = add_generation(store, "c-flaky", spec_hash, True, files)
    b = add_generation(store, "c-flaky", spec_hash, False, files)
    report = distill_campaign(store, "c-flaky")
    assert report.analysed == []
    reasons = {e["generation"]: e["reason"] for e in report.excluded}
    assert "judged both viable and failed" in reasons[a] and f"{a}, {b}" in reasons[b]


def test_power_helpers_are_exact():
    for na, nb in ((8, 2), (6, 7), (12, 3)):
        for a1 in range(na + 1):
            for b1 in range(nb + 1):
                assert P.fisher_p(a1, na, b1, nb) == pytest.approx(
                    fisher_exact([[a1, na - a1], [b1, nb - b1]]).pvalue, abs=1e-12)
    assert P.min_attainable_p(8, 2) == pytest.approx(1 / 45)  # both failed have it, no viable does
    assert P.min_attainable_p(8, 2, min_support=5) == pytest.approx(fisher_exact([[3, 5], [2, 0]]).pvalue)
    total = P.needed_total(0.2, 0.8, 0.5, 0.05)
    na = round(total * 0.5)
    assert P.power(na, total - na, 0.2, 0.8, 0.05) >= 0.8
    half = total // 2
    assert P.power(round(half * 0.5), half - round(half * 0.5), 0.2, 0.8, 0.05) < 0.8
    # power is exact: against a direct sum over binomial outcomes of scipy's test
    from scipy.stats import binom

    direct = sum(binom.pmf(x, 6, 0.2) * binom.pmf(y, 7, 0.8)
                 for x in range(7) for y in range(8)
                 if fisher_exact([[x, 6 - x], [y, 7 - y]]).pvalue < 0.05)
    assert P.power(6, 7, 0.2, 0.8, 0.05) == pytest.approx(direct, abs=1e-9)
    assert P.needed_total(0.5, 0.5, 0.5, 0.05) is None  # no effect: no size detects it
    assert P.needed_total(0.45, 0.55, 0.5, 0.004) is None  # more than MAX_TOTAL


def test_a_small_campaign_says_why_and_what_size_would_do(store):
    planted_campaign(store, campaign="c-small", n_per_group=3, broken=())
    report = distill_campaign(store, "c-small")
    lim = report.limits["viable_vs_failed"]
    assert lim["groups"] == {"viable": 3, "failed": 3} and not lim["tested"]
    assert lim["reason"] == ("the viable group has 3 generations; the failed group has 3 generations "
                             "(each group needs at least 5)")
    assert lim["min_p_any"] == pytest.approx(0.1) and lim["can_be_significant"] is False
    assert isinstance(lim["detect"]["planning"]["total"], int)
    assert "no feature can be significant here" in lim["sentence"]
    ranked = report.ranking["viable_vs_failed"]
    assert ranked and all(r["significant"] is False and r["descriptive"] for r in ranked)
    assert ranked[0]["feature"] == "monotonic_clock"
    assert report.headline.startswith("nothing could be tested (6 distinct artifacts): the viable group has 3")
    text = render_report(report.to_json())
    assert "What the tests can detect" in text and "Descriptive ranking" in text and "NOT significant" in text


def test_original_history_eight_viable_two_failed(store, tmp_path):
    """The original project's format: /workspace hard-coded everywhere, CAMBRIAN_GENERATION
    read, 8 viable and 2 failed. Nothing can be tested; the distiller says why, what size
    would do, and ranks what it sees without calling it significant."""
    original.write_tree(tmp_path / "tree")
    cid = original.load_history(store, tmp_path / "tree")
    report = distill_campaign(store, cid)
    assert report.amendments == [] and report.significant == []
    assert {k: len(v) for k, v in report.groups.items()} == {"viable": 8, "failed": 2, "top": 4, "bottom": 4}
    rows = {f["feature"]: f for f in report.to_json()["features"]}
    # /workspace is an absolute path the original artifacts all hard-code
    assert rows["hardcoded_abs_path"]["groups"]["viable"]["present"] == 8
    assert rows["hardcoded_abs_path"]["groups"]["failed"]["present"] == 2
    assert rows["unchecked_env_read"]["groups"]["failed"]["present"] == 2
    lim = report.limits["viable_vs_failed"]
    assert lim["reason"] == "the failed group has 2 generations (each group needs at least 5)"
    assert lim["min_p_any"] == pytest.approx(1 / 45) and not lim["can_be_significant"]
    assert lim["detect"]["planning"]["total"] > 40  # at a 20 % failure rate, many generations
    top = report.ranking["viable_vs_failed"][:3]
    assert {r["feature"] for r in top} >= {"swallowed_exception"}
    sw = next(r for r in report.ranking["viable_vs_failed"] if r["feature"] == "swallowed_exception")
    assert sw["groups"]["failed"]["present"] == 2 and sw["groups"]["viable"]["present"] == 1
    assert sw["descriptive"] and not sw["significant"] and sw["direction"] == "hurts"
    assert report.headline.startswith("nothing could be tested (10 distinct artifacts): the failed group has 2")
    # loading the same history again adds copies, not evidence
    original.load_history(store, tmp_path / "tree")
    again = distill_campaign(store, cid, create_amendments=False)
    assert len(again.analysed) == 10 and len(again.copies) == 10
    assert again.ranking == report.ranking and again.limits == report.limits
