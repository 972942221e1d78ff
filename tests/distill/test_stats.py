"""Significance rules: Fisher's exact test, minimum support, Benjamini–Hochberg, direction."""

from __future__ import annotations

import pytest
from scipy.stats import fisher_exact

from core.distill import stats as S


def _values(spec: dict[str, list[bool]]) -> tuple[dict[int, dict[str, bool]], list[int], list[int]]:
    """spec: feature -> presence per generation; first half group A, second half group B."""
    n = len(next(iter(spec.values())))
    values = {g: {f: v[g] for f, v in spec.items()} for g in range(n)}
    return values, list(range(n // 2)), list(range(n // 2, n))


def test_planted_difference_is_significant_and_helps():
    values, a, b = _values({"f": [True] * 18 + [False] * 2 + [True] * 2 + [False] * 18})
    [t] = S.compare(values, a, b, ["f"], "viable_vs_failed", ("viable", "failed"))
    assert t.tested and t.direction == "helps" and t.significant
    assert t.p == pytest.approx(fisher_exact([[18, 2], [2, 18]]).pvalue)
    assert t.p < 0.01
    assert t.odds_ratio == pytest.approx(81.0)
    assert (t.a.present, t.a.n, t.b.present, t.b.n) == (18, 20, 2, 20)


def test_harmful_feature_hurts():
    values, a, b = _values({"f": [True] * 2 + [False] * 18 + [True] * 18 + [False] * 2})
    [t] = S.compare(values, a, b, ["f"], "c", ("viable", "failed"))
    assert t.direction == "hurts" and t.significant
    assert t.odds_ratio == pytest.approx(1 / 81)


def test_no_difference_is_not_significant():
    values, a, b = _values({"f": [True, False] * 10 + [False, True] * 10})
    [t] = S.compare(values, a, b, ["f"], "c", ("viable", "failed"))
    assert t.tested and t.p == pytest.approx(1.0) and t.direction == "none" and not t.significant


def test_minimum_support():
    # present in only 4 generations: not tested, even though all four are in group A
    values, a, b = _values({"f": [True] * 4 + [False] * 16 + [False] * 20})
    [t] = S.compare(values, a, b, ["f"], "c", ("a", "b"))
    assert not t.tested and t.p is None and not t.significant
    assert t.reason == "present in 4 of 40 generation(s); a tested feature needs 5 with it and 5 without"
    # absent from only 3
    values, a, b = _values({"f": [True] * 20 + [True] * 17 + [False] * 3})
    [t] = S.compare(values, a, b, ["f"], "c", ("a", "b"))
    assert not t.tested and "absent" in t.reason
    # a group of 4 is too small
    values = {g: {"f": g < 4} for g in range(24)}
    [t] = S.compare(values, range(4), range(4, 24), ["f"], "c", ("a", "b"))
    assert not t.tested and t.reason == "groups too small: the a group has 4 generation(s); each group needs 5"


def test_infinite_odds_ratio_is_reported_as_none_with_haldane_fallback():
    values, a, b = _values({"f": [True] * 10 + [False] * 10})
    [t] = S.compare(values, a, b, ["f"], "c", ("a", "b"))
    assert t.odds_ratio is None and t.odds_ratio_haldane > 100
    assert t.to_json()["odds_ratio"] is None


def test_benjamini_hochberg_matches_the_definition():
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    q = S.benjamini_hochberg(p)
    # sorted: 0.005(1) 0.01(2) 0.03(3) 0.04(4) 0.5(5); m=5
    expected = {0.005: 0.025, 0.01: 0.025, 0.03: 0.05, 0.04: 0.05, 0.5: 0.5}
    assert q == pytest.approx([expected[x] for x in p])
    assert S.benjamini_hochberg([]) == []
    assert S.benjamini_hochberg([0.9, 0.99]) == pytest.approx([0.99, 0.99])


def test_correction_applies_across_tested_features_only():
    spec = {
        "strong": [True] * 18 + [False] * 2 + [True] * 2 + [False] * 18,
        "weak": [True] * 13 + [False] * 7 + [True] * 7 + [False] * 13,
        "rare": [True] * 3 + [False] * 37,
    }
    values, a, b = _values(spec)
    tests = {t.feature: t for t in S.compare(values, a, b, list(spec), "c", ("a", "b"))}
    assert not tests["rare"].tested and tests["rare"].q is None
    ps = [tests["strong"].p, tests["weak"].p]
    assert [tests["strong"].q, tests["weak"].q] == pytest.approx(S.benjamini_hochberg(ps))
    assert tests["weak"].q >= tests["weak"].p


def test_small_rate_difference_has_no_direction():
    # 60 vs 55 in groups of 200: a difference of 0.05 is below MIN_RATE_DIFF
    values = {g: {"f": (g < 120) if g < 200 else (g < 310)} for g in range(400)}
    [t] = S.compare(values, range(200), range(200, 400), ["f"], "c", ("a", "b"))
    assert t.tested and t.direction == "none" and not t.significant


def test_classify():
    assert S.classify("promoted", "viable") == "viable"
    assert S.classify("promoted", None) == "viable"
    assert S.classify("failed", "non-viable") == "failed"
    assert S.classify("failed", None) == "failed"
    assert S.classify("timeout", None) == "failed"
    assert S.classify("interrupted", None) is None
    assert S.classify("in_progress", None) is None


def test_fitness_scores_rank_on_documented_metrics():
    fit = {
        1: {"tests_passed": 10, "build_ms": 100, "test_ms": 100, "tokens_out": 9000},
        2: {"tests_passed": 5, "build_ms": 500, "test_ms": 500, "tokens_out": 1},
        3: {"tests_passed": 8, "build_ms": 200, "test_ms": 200, "tokens_out": 5},
        4: {"tokens_out": 1, "assertion_density": 9.0},
    }
    s = S.fitness_scores(fit)
    assert s[1] > s[3] > s[2]
    assert s[1] == pytest.approx(1.0) and s[2] == pytest.approx(0.0)
    assert s[4] == 0.5
    top, bottom = S.split_top_bottom(s)
    assert top == [1, 3] and bottom == [4, 2]


def test_split_with_odd_count_leaves_the_median_out():
    top, bottom = S.split_top_bottom({1: 0.9, 2: 0.5, 3: 0.1})
    assert top == [1] and bottom == [3]


def test_analyse_runs_both_comparisons():
    values = {g: {"f": g % 2 == 0} for g in range(30)}
    verdicts = {g: ("viable" if g < 20 else "failed") for g in range(30)}
    fitness = {g: {"tests_passed": g} for g in range(20)}
    res = S.analyse(values, verdicts, fitness, ["f"])
    assert res.groups["viable"] == list(range(20)) and res.groups["failed"] == list(range(20, 30))
    assert res.groups["top"] == list(range(10, 20)) and res.groups["bottom"] == list(range(10))
    assert {t.comparison for t in res.tests} == {"viable_vs_failed", "top_vs_bottom"}


def test_the_hidden_layers_rank_viable_generations_where_they_ran():
    # equal on Layer 1; apart only on what the writer never saw
    fit = {
        1: {"tests_passed": 5, "sealed_pass_rate": 1.0, "examiner_pass_rate": 1.0, "redteam_score": 1.0},
        2: {"tests_passed": 5, "sealed_pass_rate": 0.5, "examiner_pass_rate": 0.6, "redteam_score": 0.5},
        3: {"tests_passed": 5, "sealed_pass_rate": 1.0, "examiner_pass_rate": 0.8},
    }
    s = S.fitness_scores(fit)
    assert s[1] > s[3] > s[2]
    assert s[2] == pytest.approx(0.0)  # last on every hidden layer; tests_passed, shared, says nothing


def test_a_dismissed_examiner_probe_stops_counting_in_the_distillers_fitness():
    from core.distill import _without_dismissed

    report = {"fitness": {"examiner_pass_rate": 0.5, "tests_passed": 3},
              "checks": {"health": {"examiner": [{"name": "wrong", "passed": False},
                                                 {"name": "right", "passed": True}]}}}
    assert _without_dismissed(report, set())["examiner_pass_rate"] == 0.5
    assert _without_dismissed(report, {"wrong"}) == {"examiner_pass_rate": 1.0, "tests_passed": 3}
    assert "examiner_pass_rate" not in _without_dismissed(report, {"wrong", "right"})
    assert report["fitness"]["examiner_pass_rate"] == 0.5  # the stored report is not touched
