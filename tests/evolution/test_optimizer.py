"""The optimizer adapter: ask/tell with today's numpy, plain values, exact replay, swappability."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from core.evolution.optimizer import (
    BayesOptimizer,
    Choice,
    IntRange,
    RandomOptimizer,
    ReplayMismatch,
    make_optimizer,
    rebuild,
)

DIMS = [
    Choice("operator", ("rewrite", "hat", "model")),
    Choice("section", ("A", "B", "C", "D")),
    Choice("constant", ("only",)),
    IntRange("donor", 0, 2),
]


def f(p: dict) -> float:
    """A toy objective with a clear optimum: operator=hat, section=C, donor=2."""
    return (
        (0.0 if p["operator"] == "hat" else 0.5)
        + (0.0 if p["section"] == "C" else 0.3)
        + 0.1 * (2 - p["donor"])
    )


def drive(opt, n: int) -> list[tuple[dict, float]]:
    hist = []
    for _ in range(n):
        p = opt.ask()
        y = f(p)
        opt.tell(p, y)
        hist.append((p, y))
    return hist


def test_numpy_is_current_and_skopt_imports():
    import skopt

    assert int(np.__version__.split(".")[0]) >= 2
    assert skopt.__version__ == "0.10.2"


def test_ask_tell_returns_plain_python_values_that_round_trip_json():
    opt = BayesOptimizer(DIMS, seed=1, n_initial_points=3, n_points=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy 2 removals would show here
        hist = drive(opt, 8)
    for p, _ in hist:
        assert set(p) == {"operator", "section", "constant", "donor"}
        assert p["constant"] == "only"  # single-value dimension held constant
        assert type(p["operator"]) is str and type(p["section"]) is str
        assert type(p["donor"]) is int
        assert json.loads(json.dumps(p)) == p


def test_bo_finds_the_toy_optimum():
    opt = BayesOptimizer(DIMS, seed=4, n_initial_points=5, n_points=500)
    hist = drive(opt, 25)
    assert min(y for _, y in hist) == pytest.approx(0.0)


def test_same_seed_same_sequence_and_rebuild_replays_exactly():
    a = drive(BayesOptimizer(DIMS, seed=7, n_initial_points=3, n_points=300), 7)
    b = drive(BayesOptimizer(DIMS, seed=7, n_initial_points=3, n_points=300), 7)
    assert a == b
    # rebuild from the first 5 and continue: the next asks equal the uninterrupted run's
    opt = rebuild(DIMS, a[:5], kind="bo", seed=7, n_initial_points=3, n_points=300)
    assert drive(opt, 2) == a[5:]


def test_rebuild_detects_a_diverging_history():
    hist = drive(BayesOptimizer(DIMS, seed=2, n_initial_points=2, n_points=200), 4)
    bad = list(hist)
    p, y = bad[3]
    other = dict(p, section="A" if p["section"] != "A" else "B")
    bad[3] = (other, y)
    with pytest.raises(ReplayMismatch, match="observation 3"):
        rebuild(DIMS, bad, kind="bo", seed=2, n_initial_points=2, n_points=200)
    with pytest.raises(ReplayMismatch):
        rebuild(DIMS, hist, kind="bo", seed=3, n_initial_points=2, n_points=200)  # another seed


def test_random_optimizer_is_seeded_uniform_and_replayable():
    a = drive(RandomOptimizer(DIMS, seed=5), 200)
    assert a == drive(RandomOptimizer(DIMS, seed=5), 200)
    ops = [p["operator"] for p, _ in a]
    assert {ops.count(o) for o in ("rewrite", "hat", "model")} <= set(range(45, 90))
    opt = rebuild(DIMS, a[:50], kind="random", seed=5)
    assert drive(opt, 3) == a[50:53]


def test_tell_validates_points_and_values():
    opt = make_optimizer(DIMS, kind="bo", seed=0, n_initial_points=2, n_points=100)
    p = opt.ask()
    with pytest.raises(ValueError):
        opt.tell(dict(p, section="Z"), 0.1)
    with pytest.raises(ValueError):
        opt.tell({k: v for k, v in p.items() if k != "donor"}, 0.1)
    with pytest.raises(ValueError):
        opt.tell(p, float("nan"))
    with pytest.raises(ValueError):
        make_optimizer(DIMS, kind="tpe")


def test_repeated_points_are_allowed_by_default():
    """The loop's objective moves with the incumbent: asking a point again is legitimate."""
    dims = [Choice("a", ("x", "y")), Choice("b", ("p", "q"))]
    opt = BayesOptimizer(dims, seed=0, n_initial_points=2, n_points=50)
    asked = []
    for _ in range(8):
        p = opt.ask()
        asked.append((p["a"], p["b"]))
        opt.tell(p, 0.0 if p == {"a": "x", "b": "p"} else 1.0)
    assert len(asked) > len(set(asked))


def test_all_constant_space():
    opt = BayesOptimizer([Choice("a", ("x",))], seed=0)
    assert opt.ask() == {"a": "x"}
    opt.tell({"a": "x"}, 0.5)


# --- projection onto representatives (the loop's canonical points) ---------------------------

PDIMS = [
    Choice("operator", ("rewrite", "model", "hat")),
    Choice("section", ("A", "B", "C", "D", "E")),
    Choice("model", ("m1", "m2", "m3")),
    Choice("hat", ("h1", "h2", "h3", "h4")),
]
ACTIVE = {"rewrite": ("section",), "model": ("model",), "hat": ("hat",)}


def project(p: dict) -> dict:
    keep = set(ACTIVE[p["operator"]]) | {"operator"}
    return {d.name: (p[d.name] if d.name in keep else d.values[0]) for d in PDIMS}


def g(p: dict) -> float:
    """Only the active coordinate matters; the optimum is one hat out of 12 representatives."""
    table = {("hat", "h3"): -1.0, ("model", "m2"): -0.4, ("rewrite", "C"): -0.5}
    key = (p["operator"], p[ACTIVE[p["operator"]][0]])
    return table.get(key, 0.0)


def test_projected_bo_asks_only_representatives_and_enumerates_them():
    opt = BayesOptimizer(PDIMS, seed=3, n_initial_points=4, project=project)
    assert opt.candidates is not None and len(opt.candidates) == 5 + 3 + 4
    assert all(project(c) == c for c in opt.candidates)
    for _ in range(12):
        p = opt.ask()
        assert project(p) == p
        opt.tell(p, g(p))


def test_projected_bo_finds_the_optimum_faster_than_random_on_average():
    """12 representatives, 4 random initial points: projected BO hits the single best one in
    fewer asks than uniform random search over the full space (median over 15 seeds)."""

    def first_hit(opt, limit=30) -> int:
        for k in range(1, limit + 1):
            p = opt.ask()
            y = g(project(p))
            opt.tell(project(p), y)
            if y == -1.0:
                return k
        return limit + 1

    bo = sorted(first_hit(BayesOptimizer(PDIMS, seed=s, n_initial_points=4, project=project)) for s in range(15))
    rnd = sorted(first_hit(RandomOptimizer(PDIMS, seed=s)) for s in range(15))
    assert bo[7] < rnd[7], (bo, rnd)


def run_g(opt, n: int) -> list[tuple[dict, float]]:
    """``n`` ask/tell rounds on the toy objective ``g``; the (point, value) history."""
    hist = []
    for _ in range(n):
        p = opt.ask()
        opt.tell(p, g(p))
        hist.append((p, g(p)))
    return hist


def test_projected_bo_rebuild_replays_exactly():
    a = run_g(BayesOptimizer(PDIMS, seed=9, n_initial_points=3, project=project), 10)
    opt = rebuild(PDIMS, a[:6], kind="bo", seed=9, n_initial_points=3, project=project)
    assert run_g(opt, 4) == a[6:]


def test_projection_falls_back_to_sampling_on_a_huge_space():
    opt = BayesOptimizer(PDIMS, seed=0, n_initial_points=2, project=project, max_candidates=10)
    assert opt.candidates is None
    for _ in range(4):
        p = opt.ask()
        assert project(p) == p  # still projected, from skopt's sampled proposal
        opt.tell(p, g(p))


# --- an initial design instead of random initial points --------------------------------------

def test_initial_design_is_asked_first_then_the_fitted_surrogate():
    design = [project({"operator": "hat", "section": "A", "model": "m1", "hat": h}) for h in ("h4", "h2", "h1")]
    opt = BayesOptimizer(PDIMS, seed=5, project=project, initial=design)
    asked = []
    for _ in range(len(design)):
        p = opt.ask()
        asked.append(p)
        assert not opt._opt.models  # no surrogate while the design is being told
        opt.tell(p, g(p))
    assert asked == design
    assert opt._opt.models  # fitted right after the design, whatever n_initial_points says
    nxt = opt.ask()
    assert nxt in opt.candidates


def test_initial_design_replays_exactly_and_is_validated():
    design = [project({"operator": "model", "section": "A", "model": m, "hat": "h1"}) for m in ("m3", "m2")]
    a = run_g(BayesOptimizer(PDIMS, seed=8, project=project, initial=design), 7)
    assert [p for p, _ in a[:2]] == design
    opt = rebuild(PDIMS, a[:4], kind="bo", seed=8, project=project, initial=design)
    assert run_g(opt, 3) == a[4:]
    with pytest.raises(ValueError, match="outside the dimension"):
        BayesOptimizer(PDIMS, seed=0, initial=[{"operator": "model", "section": "Z", "model": "m1", "hat": "h1"}])
