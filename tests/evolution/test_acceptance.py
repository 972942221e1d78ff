"""The acceptance rule: exact Beta comparison, screening threshold, noise vs progress."""

from __future__ import annotations

import numpy as np
import pytest

from core.evolution.acceptance import Counts, accept, prob_greater, promising


@pytest.mark.parametrize("x,y", [((10, 4), (13, 1)), ((12, 2), (10, 4)), ((1, 1), (1, 1)),
                                 ((3, 9), (7, 2)), ((5, 5), (5, 5)), ((20, 3), (15, 8))])
def test_exact_probability_matches_monte_carlo(x, y):
    rng = np.random.default_rng(12345)
    mc = float((rng.beta(*x, 300_000) > rng.beta(*y, 300_000)).mean())
    assert prob_greater(x, y) == pytest.approx(mc, abs=0.005)


def test_probability_is_complementary_and_symmetric():
    assert prob_greater((4, 7), (9, 2)) + prob_greater((9, 2), (4, 7)) == pytest.approx(1.0)
    assert prob_greater((6, 6), (6, 6)) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        prob_greater((0, 1), (1, 1))


def test_noise_is_not_progress():
    inc = Counts(9, 12)  # 75 %
    # one more viable generation out of 12 is noise
    assert accept(Counts(10, 12), inc)[0] is False
    # 12/12 against 9/12 clears the 0.9 bar; so does a big, well-measured gain
    ok, p = accept(Counts(12, 12), inc)
    assert ok and p >= 0.9
    assert accept(Counts(58, 60), Counts(45, 60))[0] is True
    # an equal rate never wins
    assert accept(Counts(9, 12), inc) == (False, pytest.approx(0.5))
    assert accept(Counts(0, 0), inc) == (False, 0.0)


def test_threshold_is_a_parameter():
    inc = Counts(6, 12)
    ok90, p = accept(Counts(9, 12), inc, 0.9)
    ok80, _ = accept(Counts(9, 12), inc, 0.8)
    assert 0.8 < p < 0.9 and not ok90 and ok80


def test_promising_compares_screening_rate_with_incumbent_estimate():
    inc = Counts(9, 12)
    assert promising(Counts(3, 4), inc)
    assert promising(Counts(4, 4), inc)
    assert not promising(Counts(2, 4), inc)
    assert not promising(Counts(0, 0), inc)


def test_counts_interval_and_validation():
    c = Counts(3, 4)
    assert c.rate == 0.75 and 0 < c.interval[0] < 0.75 < c.interval[1] <= 1
    assert Counts(0, 0).rate is None
    with pytest.raises(ValueError):
        Counts(5, 4)
