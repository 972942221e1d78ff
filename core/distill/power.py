"""What a comparison of two groups can detect: exact Fisher p-values for every table, the
smallest p-value a pair of group sizes allows, exact power, and the group sizes an effect
needs (used to say precisely why a small campaign cannot show anything).

All p-values are Fisher's exact test, two-sided, defined as scipy's ``fisher_exact`` does:
the sum of the hypergeometric probabilities of the tables (same margins) no more likely
than the observed one. Here they are computed for every table at once from the
hypergeometric pmf, which is what makes exact power cheap.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import gammaln
from scipy.stats import binom

#: relative tolerance when comparing table probabilities (as scipy does)
_RTOL = 1 + 1e-7
#: the search for a sufficient size stops here (and says "more than MAX_TOTAL")
MAX_TOTAL = 400


def _lchoose(n: int, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


@functools.lru_cache(maxsize=256)
def pvalues(n_a: int, n_b: int) -> np.ndarray:
    """``p[a1, b1]``: the two-sided Fisher p-value of the table ``[[a1, n_a - a1], [b1, n_b - b1]]``
    for every ``0 <= a1 <= n_a``, ``0 <= b1 <= n_b``."""
    total = n_a + n_b
    a = np.arange(n_a + 1)[:, None]
    b = np.arange(n_b + 1)[None, :]
    # hypergeometric probability of each table given its margins (k = a1 + b1 "present")
    prob = np.exp(_lchoose(n_a, a) + _lchoose(n_b, b) - _lchoose(total, a + b))
    out = np.ones((n_a + 1, n_b + 1))
    for k in range(total + 1):  # the tables sharing margins lie on one anti-diagonal
        a1 = np.arange(max(0, k - n_b), min(k, n_a) + 1)
        pmf = prob[a1, k - a1]
        order = np.sort(pmf)
        cum = np.cumsum(order)
        # p(a1) = sum of pmf(j) over tables with pmf(j) <= pmf(a1) (within tolerance)
        idx = np.searchsorted(order, pmf * _RTOL, side="right") - 1
        out[a1, k - a1] = np.minimum(1.0, cum[idx])
    return out


def fisher_p(a1: int, n_a: int, b1: int, n_b: int) -> float:
    return float(pvalues(n_a, n_b)[a1, b1])


def min_attainable_p(n_a: int, n_b: int, min_support: int = 0) -> float | None:
    """The smallest two-sided p-value any feature could reach with these group sizes, among
    tables where the feature is present in, and absent from, at least ``min_support``
    generations; None when no table meets the support rule."""
    if n_a <= 0 or n_b <= 0:
        return None
    p = pvalues(n_a, n_b)
    best = None
    for a1 in range(n_a + 1):
        for b1 in range(n_b + 1):
            k = a1 + b1
            if k < min_support or n_a + n_b - k < min_support:
                continue
            if best is None or p[a1, b1] < best:
                best = float(p[a1, b1])
    return best


def power(n_a: int, n_b: int, rate_a: float, rate_b: float, alpha: float) -> float:
    """P(Fisher's two-sided p < alpha) when the feature is present with probability
    ``rate_a`` in group A (n_a generations) and ``rate_b`` in group B (exact)."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    wa = binom.pmf(np.arange(n_a + 1), n_a, rate_a)
    wb = binom.pmf(np.arange(n_b + 1), n_b, rate_b)
    hit = pvalues(n_a, n_b) < alpha
    return float(wa @ hit @ wb)


def needed_total(rate_a: float, rate_b: float, share_a: float, alpha: float,
                 target: float = 0.8, start: int = 4) -> int | None:
    """A total number of generations, split between the groups in the ratio
    ``share_a : 1 - share_a``, at which Fisher's test at ``alpha`` has at least ``target``
    power to tell ``rate_a`` from ``rate_b``: found by doubling, then bisection (exact
    power is not quite monotone in the size, so this is a size that reaches the target,
    within a few generations of the smallest); None when even MAX_TOTAL does not."""
    share_a = min(max(share_a, 0.0), 1.0)
    if share_a in (0.0, 1.0) or rate_a == rate_b:
        return None

    def enough(total: int) -> bool:
        n_a = max(1, round(total * share_a))
        n_b = total - n_a
        return n_b >= 1 and power(n_a, n_b, rate_a, rate_b, alpha) >= target

    lo, hi = max(start, 2) - 1, max(start, 2)
    while not enough(hi):
        if hi >= MAX_TOTAL:
            return None
        lo, hi = hi, min(2 * hi, MAX_TOTAL)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid
    return hi


def clamp_rate(x: float) -> float:
    """Observed rates of 0 or 1 mean "rare"/"common", not "never"/"always" (a planning rate)."""
    return min(0.95, max(0.05, x))


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}".rstrip("0").rstrip(".") if p < 0.1 else f"{p:.2f}"


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


__all__ = ["MAX_TOTAL", "clamp_rate", "fisher_p", "fmt_p", "min_attainable_p", "needed_total", "pct",
           "power", "pvalues"]
