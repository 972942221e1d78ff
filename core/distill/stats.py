"""Which features separate good generations from bad ones (DESIGN §10).

Two comparisons, each a set of 2x2 tables (group x feature present/absent):

* ``viable_vs_failed`` — viable generations (report status ``viable`` or outcome
  ``promoted``) against failed ones (status ``non-viable`` or outcome ``failed``/``timeout``).
* ``top_vs_bottom`` — among viable generations only, the upper half by fitness score
  against the lower half (see :func:`fitness_scores`).

Per feature and comparison: Fisher's exact test (two-sided, ``scipy.stats.fisher_exact``),
the sample odds ratio, and the Benjamini–Hochberg adjusted q-value across the features of
that comparison that met the minimum support. The rules are in ``README.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from scipy.stats import fisher_exact

#: q-value below which a result is significant.
ALPHA = 0.05
#: each group of a comparison needs at least this many generations
MIN_GROUP = 5
#: a feature must be present in at least this many generations of the comparison, and
#: absent from at least this many (a feature everywhere or nowhere says nothing)
MIN_SUPPORT = 5
#: smallest absolute difference between the two rates that counts as a clear direction
MIN_RATE_DIFF = 0.10

COMPARISONS = {
    "viable_vs_failed": ("viable", "failed"),
    "top_vs_bottom": ("top", "bottom"),
}

#: fitness metrics used to rank viable generations: (key, higher is better). Only
#: behaviour the rig measured: token counts and static code metrics (assertion density,
#: line counts) are left out on purpose, because they follow coding style directly and
#: would make style features "significant" by construction.
SCORE_METRICS: tuple[tuple[str, bool], ...] = (
    ("tests_passed", True),
    ("test_pass_rate", True),
    ("vector_pass_rate", True),
    ("contract_pass_rate", True),
    # the hidden layers, where they ran: what the writer never saw (sealed vectors, the
    # examiner's probes without the dismissed ones, the red team's score)
    ("sealed_pass_rate", True),
    ("examiner_pass_rate", True),
    ("redteam_score", True),
    ("total_ms", False),
)


@dataclass
class GroupCount:
    n: int
    present: int

    @property
    def rate(self) -> float | None:
        return self.present / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "present": self.present, "rate": _round(self.rate)}


@dataclass
class FeatureTest:
    """One feature in one comparison."""

    feature: str
    comparison: str
    group_a: str
    group_b: str
    a: GroupCount
    b: GroupCount
    tested: bool = False
    reason: str = ""  # why it was not tested, when it was not
    p: float | None = None
    q: float | None = None
    odds_ratio: float | None = None  # sample odds ratio (a_present*b_absent)/(a_absent*b_present); None if infinite/undefined
    odds_ratio_haldane: float | None = None  # with 0.5 added to every cell: always finite
    direction: str = "none"  # helps | hurts | none  (helps: more common in group_a)

    @property
    def significant(self) -> bool:
        return self.tested and self.q is not None and self.q < ALPHA and self.direction != "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "comparison": self.comparison,
            "groups": {self.group_a: self.a.to_json(), self.group_b: self.b.to_json()},
            "tested": self.tested,
            "reason": self.reason,
            "p": sig(self.p),
            "q": sig(self.q),
            "odds_ratio": _round(self.odds_ratio),
            "odds_ratio_haldane": _round(self.odds_ratio_haldane),
            "direction": self.direction,
            "significant": self.significant,
        }


def _round(x: float | None, digits: int = 4) -> float | None:
    """``digits`` decimals; values below 10**-digits keep 3 significant figures."""
    if x is None or not math.isfinite(x):
        return None
    if x != 0 and abs(x) < 10 ** -digits:
        return float(f"{x:.3g}")
    return round(x, digits)


def sig(x: float | None) -> float | None:
    """Three significant figures (for p- and q-values); None when not finite."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.3g}")


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """BH step-up adjusted p-values (q-values), in the input order:
    q_(i) = min_{j >= i} (m / j) * p_(j), capped at 1."""
    m = len(pvalues)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def _odds(a1: int, a0: int, b1: int, b0: int) -> tuple[float | None, float]:
    num, den = a1 * b0, a0 * b1
    sample = num / den if den else None
    haldane = ((a1 + 0.5) * (b0 + 0.5)) / ((a0 + 0.5) * (b1 + 0.5))
    return sample, haldane


def compare(
    values: Mapping[int, Mapping[str, bool]],
    group_a: Iterable[int],
    group_b: Iterable[int],
    features: Sequence[str],
    comparison: str,
    names: tuple[str, str],
) -> list[FeatureTest]:
    """Test every feature for a difference between two groups of generations.

    ``values`` maps generation number -> feature -> present."""
    ga, gb = list(group_a), list(group_b)
    out: list[FeatureTest] = []
    for feat in features:
        a1 = sum(1 for g in ga if values[g].get(feat))
        b1 = sum(1 for g in gb if values[g].get(feat))
        t = FeatureTest(feat, comparison, names[0], names[1], GroupCount(len(ga), a1), GroupCount(len(gb), b1))
        total_present = a1 + b1
        total_absent = len(ga) + len(gb) - total_present
        small = [f"the {n} group has {len(g)}" for n, g in zip(names, (ga, gb)) if len(g) < MIN_GROUP]
        total = len(ga) + len(gb)
        if small:
            t.reason = f"groups too small: {' and '.join(small)} generation(s); each group needs {MIN_GROUP}"
        elif total_present < MIN_SUPPORT:
            t.reason = (f"present in {total_present} of {total} generation(s); a tested feature needs "
                        f"{MIN_SUPPORT} with it and {MIN_SUPPORT} without")
        elif total_absent < MIN_SUPPORT:
            t.reason = (f"absent from only {total_absent} of {total} generation(s); a tested feature needs "
                        f"{MIN_SUPPORT} with it and {MIN_SUPPORT} without")
        else:
            t.tested = True
            table = [[a1, len(ga) - a1], [b1, len(gb) - b1]]
            res = fisher_exact(table, alternative="two-sided")
            t.p = float(res.pvalue)
            t.odds_ratio, t.odds_ratio_haldane = _odds(a1, len(ga) - a1, b1, len(gb) - b1)
            diff = (t.a.rate or 0.0) - (t.b.rate or 0.0)
            if abs(diff) >= MIN_RATE_DIFF:
                t.direction = "helps" if diff > 0 else "hurts"
        out.append(t)
    tested = [t for t in out if t.tested]
    for t, q in zip(tested, benjamini_hochberg([t.p for t in tested if t.p is not None])):
        t.q = q
    return out


# --- grouping -------------------------------------------------------------------------


def classify(outcome: str, status: str | None) -> str | None:
    """viable | failed | None (no verdict: in progress, interrupted, not yet tested)."""
    if status == "viable" or outcome == "promoted":
        return "viable"
    if status == "non-viable" or outcome in ("failed", "timeout"):
        return "failed"
    return None


def total_ms(fitness: Mapping[str, Any]) -> float | None:
    parts = [v for k, v in fitness.items() if k.endswith("_ms") and isinstance(v, (int, float))]
    return float(sum(parts)) if parts else None


def fitness_scores(fitness: Mapping[int, Mapping[str, Any]]) -> dict[int, float]:
    """A score in [0, 1] per generation: the mean, over the metrics of
    :data:`SCORE_METRICS` that the generation has, of its percentile rank among the
    generations that have that metric (ties share their mean rank; a metric every
    generation shares carries no information and is skipped). Generations without any
    usable metric score 0.5."""
    gens = list(fitness)
    columns: dict[str, dict[int, float]] = {}
    for key, higher in SCORE_METRICS:
        col: dict[int, float] = {}
        for g in gens:
            f = fitness[g]
            v = total_ms(f) if key == "total_ms" else f.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            col[g] = float(v) if higher else -float(v)
        if len(set(col.values())) > 1:
            columns[key] = col
    ranks: dict[int, list[float]] = {g: [] for g in gens}
    for col in columns.values():
        ordered = sorted(col.values())
        n = len(ordered)
        for g, v in col.items():
            below = sum(1 for x in ordered if x < v)
            equal = sum(1 for x in ordered if x == v)
            ranks[g].append((below + (equal - 1) / 2) / (n - 1) if n > 1 else 0.5)
    return {g: (sum(r) / len(r) if r else 0.5) for g, r in ranks.items()}


def split_top_bottom(scores: Mapping[int, float]) -> tuple[list[int], list[int]]:
    """Upper and lower half by score (ties broken by generation number, older first in
    the top); with an odd count the median generation is left out."""
    ordered = sorted(scores, key=lambda g: (-scores[g], g))
    half = len(ordered) // 2
    return ordered[:half], ordered[len(ordered) - half:] if half else []


@dataclass
class Analysis:
    groups: dict[str, list[int]] = field(default_factory=dict)
    tests: list[FeatureTest] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)

    def significant(self) -> list[FeatureTest]:
        return [t for t in self.tests if t.significant]

    def by_feature(self, feature: str) -> list[FeatureTest]:
        return [t for t in self.tests if t.feature == feature]


def analyse(
    values: Mapping[int, Mapping[str, bool]],
    verdicts: Mapping[int, str],
    fitness: Mapping[int, Mapping[str, Any]],
    features: Sequence[str],
) -> Analysis:
    """Both comparisons. ``verdicts``: generation -> "viable" | "failed"."""
    viable = sorted(g for g, v in verdicts.items() if v == "viable" and g in values)
    failed = sorted(g for g, v in verdicts.items() if v == "failed" and g in values)
    scores = fitness_scores({g: fitness.get(g, {}) for g in viable})
    top, bottom = split_top_bottom(scores)
    res = Analysis(groups={"viable": viable, "failed": failed, "top": sorted(top), "bottom": sorted(bottom)},
                   scores=scores)
    for name, (ga, gb) in COMPARISONS.items():
        res.tests += compare(values, res.groups[ga], res.groups[gb], features, name, (ga, gb))
    return res
