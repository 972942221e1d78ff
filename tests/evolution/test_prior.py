"""The prior learned from earlier runs: what it counts, how it shrinks, and how BO uses it."""

from __future__ import annotations

import pytest

from core.evolution.optimizer import BayesOptimizer, rebuild
from core.evolution.prior import K_OPERATOR, K_SECTION, OperatorPrior, climbing_part, learn_prior
from tests.evolution.test_optimizer import PDIMS, project


def rw(intent: str, section: str) -> dict:
    return {"operator": "rewrite", "intent": intent, "section": section, "hat": "h1", "model": "m1"}


def test_the_climbing_part_ends_at_the_last_gain():
    h = [(rw("add", "A"), 0.0), (rw("add", "B"), -1.2), (rw("remove", "A"), 0.0), (rw("add", "A"), -0.3),
         (rw("add", "C"), 0.0), (rw("remove", "B"), 0.0)]
    assert climbing_part(h) == h[:4]
    assert climbing_part([(rw("add", "A"), 0.0), (rw("add", "A"), 0.25)]) == []  # no gain: nothing climbed


def test_means_are_shrunk_towards_no_gain_and_sections_towards_their_operator():
    r1 = [({"operator": "hat", "hat": "h2"}, -4.0),  # one-shot: not counted
          (rw("add", "A"), -1.0), (rw("add", "A"), 0.0), (rw("remove", "A"), 0.0), (rw("add", "B"), -2.0),
          ({"operator": "crossover", "section": "A", "donor": 1}, 0.0), (rw("add", "C"), 0.0)]  # after the last gain
    r2 = [(rw("rephrase", "A"), 0.25), (rw("add", "B"), -0.5)]  # a broken rewrite's penalty counts too
    r3 = [(rw("add", "A"), 0.0)]  # never gained: teaches nothing
    p = learn_prior({"e-1": r1, "e-2": r2, "e-3": r3})
    assert p is not None and p.runs == ["e-1", "e-2"] and p.observations == 4 + 2
    add = (-1.0 + 0.0 - 2.0 - 0.5) / (4 + K_OPERATOR)
    assert p.by_operator() == pytest.approx({"rewrite add": add, "rewrite remove": 0.0,
                                             "rewrite rephrase": 0.25 / (1 + K_OPERATOR)})
    assert p.mean(rw("add", "B")) == pytest.approx((-2.5 + K_SECTION * add) / (2 + K_SECTION))
    assert p.mean(rw("add", "A")) == pytest.approx((-1.0 + K_SECTION * add) / (2 + K_SECTION))
    assert p.mean(rw("add", "Z")) == pytest.approx(add)  # a section never seen: the operator's mean
    assert p.mean(rw("remove", "B")) == 0.0
    assert p.mean({"operator": "hat", "hat": "h2"}) == 0.0  # one-shot moves never get a prior
    assert p.mean({"operator": "crossover", "section": "A", "donor": 0}) == 0.0  # unseen operator
    assert learn_prior({"e-3": r3}) is None and learn_prior({}) is None


def test_a_prior_survives_the_settings_round_trip():
    p = learn_prior({"e-1": [(rw("add", "A"), -1.0), (rw("remove", "B"), 0.0)]})
    q = OperatorPrior(**p.model_dump())
    assert q == p and q.mean(rw("add", "A")) == p.mean(rw("add", "A")) < 0


def prior_for(favoured: str):
    """A prior that says: rewrites of ``favoured`` gain, others are worth nothing."""
    return lambda c: -1.0 if c["operator"] == "rewrite" and c["section"] == favoured else 0.0


DESIGN = [project({"operator": "hat", "section": "A", "model": "m1", "hat": h}) for h in ("h2", "h3")]


def test_bo_asks_what_the_prior_favours_first_and_moves_on_when_it_does_not_pay():
    """After the design (nothing gained), a cold GP has no reason to prefer any rewrite; with a
    prior it asks the favoured section first, and after that section keeps paying nothing,
    the run's own observations override the prior."""
    for favoured in ("B", "D"):
        opt = BayesOptimizer(PDIMS, seed=4, project=project, initial=DESIGN, prior=prior_for(favoured))
        for p in DESIGN:
            opt.tell(opt.ask(), 0.0)
        first = opt.ask()
        assert first == project({"operator": "rewrite", "section": favoured, "model": "m1", "hat": "h1"})
        asked = [first]
        opt.tell(first, 0.0)
        for _ in range(6):
            p = opt.ask()
            asked.append(p)
            opt.tell(p, 0.0)
        assert any(p != first for p in asked[1:])


def test_bo_with_a_prior_replays_exactly():
    def run(opt, n):
        hist = []
        for _ in range(n):
            p = opt.ask()
            y = -0.7 if p["operator"] == "rewrite" and p["section"] == "C" else 0.0
            opt.tell(p, y)
            hist.append((p, y))
        return hist

    a = run(BayesOptimizer(PDIMS, seed=2, project=project, initial=DESIGN, prior=prior_for("B")), 9)
    opt = rebuild(PDIMS, a[:5], kind="bo", seed=2, project=project, initial=DESIGN, prior=prior_for("B"))
    assert run(opt, 4) == a[5:]
    cold = run(BayesOptimizer(PDIMS, seed=2, project=project, initial=DESIGN), 9)
    assert cold != a  # the prior changed what was asked


def test_a_prior_needs_the_enumerated_representatives():
    with pytest.raises(ValueError, match="prior needs"):
        BayesOptimizer(PDIMS, seed=0, prior=prior_for("B"))
