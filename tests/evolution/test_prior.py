"""The prior learned from earlier runs: what it counts, how it shrinks, and how BO uses it."""

from __future__ import annotations

import pytest

from core.evolution.optimizer import BayesOptimizer, rebuild
from core.evolution.prior import K_OPERATOR, K_SECTION, MIN_DEFER_RUNS, OperatorPrior, climbing_part, learn_prior
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


def hat(name: str) -> dict:
    return {"operator": "hat", "hat": name, "model": "m1"}


def model(name: str) -> dict:
    return {"operator": "model", "hat": "h1", "model": name}


def test_one_shot_choices_that_never_paid_in_enough_runs_are_deferred():
    """A hat or model is left out of the sweep only when MIN_DEFER_RUNS runs tried it while
    climbing and none gained from it; tries after a run's last gain and repeated tries within
    one run do not add evidence."""
    runs = {
        "e-1": [(hat("h2"), 0.0), (hat("h2"), 0.0), (hat("h3"), -2.0), (model("m2"), 0.0), (rw("add", "A"), -0.5),
                (hat("h4"), 0.0)],  # h4 after the last gain: not counted
        "e-2": [(hat("h2"), 0.0), (hat("h3"), 0.0), (model("m2"), 0.0), (hat("h3"), -1.0)],
        "e-3": [(hat("h2"), 0.0), (hat("h3"), 0.0), (hat("h4"), 0.0), (model("m3"), -3.0)],
    }
    assert MIN_DEFER_RUNS == 3
    p = learn_prior(runs)
    assert p is not None and p.runs == ["e-1", "e-2", "e-3"]
    tried = {(e.operator, e.value): (e.tried, e.gained) for e in p.one_shot}
    assert tried == {("hat", "h2"): (3, 0), ("hat", "h3"): (3, 2), ("hat", "h4"): (1, 0),
                     ("model", "m2"): (2, 0), ("model", "m3"): (1, 1)}
    assert p.deferred(hat("h2")) and p.deferred_names() == ["hat h2"]
    assert not p.deferred(hat("h3"))  # gained in two runs
    assert not p.deferred(hat("h4")) and not p.deferred(model("m2"))  # too little evidence
    assert not p.deferred(hat("h9"))  # never tried: no evidence at all
    assert not p.deferred(rw("add", "A"))  # repeatable operators are never deferred
    # a run whose only gains were one-shot still teaches which choices pay; no rewrite prior then
    q = learn_prior({"e-3": runs["e-3"]})
    assert q is not None and q.observations == 0 and q.entries == [] and q.mean(rw("add", "A")) == 0.0
    assert OperatorPrior(**p.model_dump()) == p
    # model choices count only from the runs that started from the new run's model
    runs_m = {f"e-{k}": [(model("m2"), 0.0), (hat("h3"), -1.0)] for k in range(3)}
    assert learn_prior(runs_m).deferred_names() == ["model m2"]
    assert learn_prior(runs_m, model_evidence=["e-0", "e-1"]).deferred_names() == []
    assert learn_prior(runs_m, model_evidence=[]).one_shot[0].operator == "hat"
    assert learn_prior(runs_m, model="m2").deferred_names() == []  # the new run's own model
    # a prior stored before one-shot evidence existed defers nothing
    old = p.model_dump()
    del old["one_shot"]
    assert OperatorPrior(**old).deferred_names() == []


def test_the_sweep_leaves_out_deferred_choices_and_keeps_the_others_in_order():
    from core.evolution.settings import search_space, sweep_points
    from tests.evolution.test_loop import _settings

    runs = {f"e-{k}": [(hat("h2"), 0.0), (model("sim-1-lite"), 0.0), (hat("h1"), -1.0)] for k in range(3)}
    prior = learn_prior(runs)
    assert prior.deferred_names() == ["hat h2", "model sim-1-lite"]
    for seed in range(5):
        cold = _settings(seed=seed)
        warm = _settings(seed=seed, prior=prior.model_dump())
        dims = search_space(cold)
        full, pruned = sweep_points(cold, dims), sweep_points(warm, dims)
        assert pruned == [p for p in full if not (p["operator"] == "hat" and p["hat"] == "h2")
                          and not (p["operator"] == "model" and p["model"] == "sim-1-lite")]
        assert len(pruned) == len(full) - 2
        assert search_space(warm) == dims  # deferred, not removed: BO can still ask them


def test_the_status_line_names_what_the_sweep_leaves_out():
    from core.evolution.describe import prior_line

    st = {"runs": ["e-1", "e-2", "e-3"], "observations": 12, "by_operator": {"rewrite add": -0.45},
          "deferred": ["hat h2", "model sim-1-lite"]}
    assert prior_line(st) == ("prior: 12 observations of 3 earlier runs (rewrite add -0.45); "
                              "not swept (never paid): hat h2, model sim-1-lite")
    assert prior_line({**st, "deferred": []}).endswith("(rewrite add -0.45)")
    assert prior_line({"runs": ["e-1"], "observations": 0, "by_operator": {}, "deferred": ["hat h2"]}) == (
        "prior: 1 earlier run (no rewrite or crossover while climbing); not swept (never paid): hat h2")
    assert prior_line(None).startswith("prior: none, a cold start")


KNOWN = ([project({"operator": "hat", "section": "A", "model": "m1", "hat": h}) for h in ("h1", "h4")]
         + [project({"operator": "model", "section": "A", "model": m, "hat": "h1"}) for m in ("m2", "m3")])


def test_choices_known_to_pay_nothing_are_asked_less_and_replay_exactly():
    """Telling BO what earlier runs saw for the deferred choices (0) before its first ask makes
    it spend fewer of its next asks re-checking them than a surrogate that sees them as
    unexplored; they are not counted as this run's observations, and replay is exact."""
    def asks(known, seed):
        opt = BayesOptimizer(PDIMS, seed=seed, project=project, initial=DESIGN, known=known)
        assert opt.n_told == 0
        hist = []
        for _ in range(8):
            p = opt.ask()
            y = -1.0 if p == DESIGN[1] else 0.0
            opt.tell(p, y)
            hist.append((p, y))
        return opt, hist

    known = [(p, 0.0) for p in KNOWN]
    for seed in range(6):
        _, cold = asks((), seed)
        opt, warm = asks(known, seed)
        assert [p for p, _ in warm[:2]] == DESIGN  # the design itself is unchanged
        assert sum(p in KNOWN for p, _ in warm[2:]) < sum(p in KNOWN for p, _ in cold[2:])
        assert opt.n_told == 8
        again = rebuild(PDIMS, warm[:5], kind="bo", seed=seed, project=project, initial=DESIGN, known=known)
        for p, y in warm[5:]:
            assert again.ask() == p
            again.tell(p, y)
