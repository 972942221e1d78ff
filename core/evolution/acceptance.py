"""Screening and acceptance: when is a variant worth a full campaign, and when does it
replace the incumbent?

* **Promising** (screening → full campaign): the variant's screening rate is at least the
  incumbent's point estimate.
* **Accepted** (variant → new incumbent): only on the variant's *full* campaign (the
  screening campaign selected it, so its screening counts are biased upwards and are not
  reused), and only when the gain clears run-to-run noise::

      P(p_variant > p_incumbent) >= accept_probability      (default 0.9)

  with independent Beta(1 + viable, 1 + judged - viable) posteriors (uniform priors) for
  the variant's full campaign and for the full campaign that made the incumbent. The
  probability is computed *exactly* (a finite sum for integer parameters), so the decision
  is a pure function of four counts: no Monte Carlo, nothing to seed, identical on resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.engine.stats import wilson_interval

__all__ = ["Counts", "prob_greater", "promising", "accept"]


@dataclass(frozen=True)
class Counts:
    viable: int
    judged: int

    def __post_init__(self) -> None:
        if not 0 <= self.viable <= self.judged:
            raise ValueError(f"bad counts {self.viable}/{self.judged}")

    @property
    def rate(self) -> float | None:
        return self.viable / self.judged if self.judged else None

    @property
    def interval(self) -> tuple[float, float]:
        lo, hi = wilson_interval(self.viable, self.judged)
        return (round(lo, 4), round(hi, 4))

    def posterior(self) -> tuple[int, int]:
        return (1 + self.viable, 1 + self.judged - self.viable)


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_greater(x: tuple[int, int], y: tuple[int, int]) -> float:
    """P(X > Y) for independent X ~ Beta(*x), Y ~ Beta(*y) with integer parameters.

    Uses P(X > Y) = sum_{i=0}^{a_x - 1} B(a_y + i, b_x + b_y) / ((b_x + i) B(1 + i, b_x) B(a_y, b_y)).
    """
    ax, bx = x
    ay, by = y
    if min(ax, bx, ay, by) < 1 or any(int(v) != v for v in (ax, bx, ay, by)):
        raise ValueError("integer parameters >= 1 expected")
    total = 0.0
    for i in range(int(ax)):
        total += math.exp(_lbeta(ay + i, bx + by) - math.log(bx + i) - _lbeta(1 + i, bx) - _lbeta(ay, by))
    return min(1.0, max(0.0, total))


def promising(screen: Counts, incumbent: Counts) -> bool:
    """Worth a full campaign: screening rate >= the incumbent's point estimate."""
    if screen.rate is None:
        return False
    return screen.rate >= (incumbent.rate or 0.0)


def accept(variant_full: Counts, incumbent: Counts, threshold: float = 0.9) -> tuple[bool, float]:
    """(accepted, P(variant > incumbent)). A variant without judged generations never wins."""
    if variant_full.judged == 0:
        return False, 0.0
    p = prob_greater(variant_full.posterior(), incumbent.posterior())
    return p >= threshold, p
