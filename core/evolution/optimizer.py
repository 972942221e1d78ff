"""A small ask/tell adapter over the optimizer library (today scikit-optimize 0.10.2).

The rest of Cambrian only sees this module: a search space made of plain
:class:`Choice` / :class:`IntRange` dimensions, points as ``dict[str, str | int]`` of plain
Python values, and an objective to *minimise*. scikit-optimize is unmaintained, so it is
imported here and nowhere else; replacing it means rewriting :class:`BayesOptimizer` only.

Exact resume
------------
An optimizer's state is never stored. :func:`rebuild` recreates it from the observation
history by replaying every ``ask → tell`` pair in its original order with the same
``random_state``, and checks that each re-asked point equals the stored one. Any divergence
(a changed library, a changed space, edited history) raises :class:`ReplayMismatch` instead
of silently continuing from a different state.
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "BayesOptimizer",
    "Choice",
    "Dimension",
    "IntRange",
    "Optimizer",
    "RandomOptimizer",
    "ReplayMismatch",
    "make_optimizer",
    "rebuild",
]


@dataclass(frozen=True)
class Choice:
    """An unordered choice among ``values`` (strings or ints)."""

    name: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"dimension {self.name!r} has no values")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"dimension {self.name!r} repeats a value")

    @property
    def size(self) -> int:
        return len(self.values)

    def contains(self, v: Any) -> bool:
        return v in self.values


@dataclass(frozen=True)
class IntRange:
    """An ordered integer in ``[low, high]`` (both included)."""

    name: str
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"dimension {self.name!r}: high < low")

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))

    def contains(self, v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and self.low <= v <= self.high


Dimension = Choice | IntRange


class ReplayMismatch(RuntimeError):
    """Replaying the history did not re-ask the stored points."""


def _plain(v: Any) -> Any:
    """numpy scalars → Python scalars (points go to JSON and are compared with ``==``)."""
    item = getattr(v, "item", None)
    return item() if callable(item) else v


class Optimizer:
    """Ask/tell protocol. ``ask`` returns a full point (every dimension, plain values)."""

    dims: tuple[Dimension, ...]

    def ask(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def tell(self, point: dict[str, Any], y: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _check(self, point: dict[str, Any]) -> None:
        names = [d.name for d in self.dims]
        if sorted(point) != sorted(names):
            raise ValueError(f"point keys {sorted(point)} != dimensions {sorted(names)}")
        for d in self.dims:
            if not d.contains(point[d.name]):
                raise ValueError(f"{d.name}={point[d.name]!r} is outside the dimension")


class RandomOptimizer(Optimizer):
    """Uniform random search over the same space (the baseline BO must beat)."""

    def __init__(self, dims: Sequence[Dimension], *, seed: int = 0) -> None:
        self.dims = tuple(dims)
        self.rng = random.Random(f"cambrian-random-search|{seed}")
        self.n_told = 0

    def ask(self) -> dict[str, Any]:
        return {d.name: self.rng.choice(d.values) for d in self.dims}

    def tell(self, point: dict[str, Any], y: float) -> None:
        self._check(point)
        self.n_told += 1


class BayesOptimizer(Optimizer):
    """scikit-optimize ``Optimizer`` behind the adapter.

    Dimensions with a single value are held constant (skopt cannot model them) and merged
    back into every asked point. ``avoid_duplicates=False`` by default: the loop's objective
    is the gain over the *current* incumbent, so asking a point again after the incumbent
    moved is a legitimate (and often the best) move.

    ``project`` maps a point to its representative (the loop's ``canonical``: coordinates the
    point's operator ignores set to a fixed value). With it, every asked point is a
    representative, and after the initial points the acquisition is maximised *exactly* over
    the finite set of representatives, using skopt's fitted surrogate. Without it skopt samples
    ``n_points`` full points, most of them differing from every told (canonical) point only in
    ignored coordinates: the surrogate sees them as unexplored, and the acquisition degenerates
    into exploring irrelevant coordinates.

    ``initial``: an initial design asked first, in order, instead of ``n_initial_points``
    random points (the GP is first fitted once all of them are told).

    ``known``: ``(point, y)`` pairs told to the surrogate before the first ask — what earlier
    runs observed for choices this run does not try itself (the loop's deferred one-shot
    choices). They are not this run's observations: ``n_told`` does not count them.

    ``prior``: a prior mean of the objective at a point — what earlier runs suggest a
    mutation is worth before this run has tried it. The GP is fitted to ``y - prior(point)``
    and the acquisition is computed on ``prior + GP``, so the prior steers the first asks and
    fades as this run's own observations of a point accumulate. Needs ``project`` (the
    acquisition is then computed here, over the representatives).
    """

    def __init__(
        self,
        dims: Sequence[Dimension],
        *,
        seed: int = 0,
        n_initial_points: int = 6,
        base_estimator: str = "GP",
        acq_func: str = "EI",
        n_points: int = 2000,
        avoid_duplicates: bool = False,
        initial_point_generator: str = "random",
        project: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        max_candidates: int = 20_000,
        gp_restarts: int = 0,
        initial: Sequence[dict[str, Any]] = (),
        prior: Callable[[dict[str, Any]], float] | None = None,
        known: Sequence[tuple[dict[str, Any], float]] = (),
    ) -> None:
        from skopt import Optimizer as _SkOptimizer
        from skopt.space import Categorical, Integer

        self.dims = tuple(dims)
        self.fixed = {d.name: d.values[0] for d in self.dims if d.size == 1}
        self.free = [d for d in self.dims if d.size > 1]
        self.n_told = 0
        self.project = project
        self.seed = seed
        self.acq_func = acq_func
        self.initial = [dict(p) for p in initial]
        self.prior = prior
        self.told_y: list[float] = []
        for p in self.initial:
            self._check(p)
        if self.initial:
            n_initial_points = len(self.initial)
        self.candidates: list[dict[str, Any]] | None = None
        if not self.free:
            self._opt = None
            return
        if project is not None:
            self.candidates = _representatives(self.dims, project, max_candidates)
            if self.candidates is not None:
                n_points = 1  # skopt's own sampled proposal is never used: keep it cheap
        if prior is not None and self.candidates is None:
            raise ValueError("a prior needs a projected space small enough to enumerate (project=...)")
        self._prior_at = None if prior is None else [prior(c) for c in self.candidates or ()]
        space = []
        for d in self.free:
            if isinstance(d, IntRange):
                space.append(Integer(d.low, d.high, name=d.name))
            else:
                space.append(Categorical(list(d.values), name=d.name))
        kwargs: dict[str, Any] = {}
        if acq_func in ("EI", "PI", "LCB", "gp_hedge"):
            kwargs["acq_optimizer_kwargs"] = {"n_points": n_points}
        self._opt = _SkOptimizer(
            space,
            base_estimator=base_estimator,
            n_initial_points=n_initial_points,
            acq_func=acq_func,
            acq_optimizer="sampling",
            initial_point_generator=initial_point_generator,
            random_state=seed,
            avoid_duplicates=avoid_duplicates,
            **kwargs,
        )
        # skopt's GP refits its kernel with 2 extra optimizer restarts on every tell; a resume
        # replays every tell. Without them BO runs ~2x faster and, on the sim landscape, needs
        # as many evaluations (bench/README.md).
        est = self._opt.base_estimator_
        if hasattr(est, "n_restarts_optimizer"):
            est.set_params(n_restarts_optimizer=gp_restarts)
        for p, y in known:
            self._tell_model(p, y)

    def ask(self) -> dict[str, Any]:
        if self.n_told < len(self.initial):
            return dict(self.initial[self.n_told])
        point = dict(self.fixed)
        if self._opt is not None:
            if self.candidates is not None and self._opt.models:
                return dict(self._best_candidate())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x = self._opt.ask()
            point.update({d.name: _plain(v) for d, v in zip(self.free, x)})
        point = {d.name: point[d.name] for d in self.dims}
        return self.project(point) if self.project is not None else point

    def _best_candidate(self) -> dict[str, Any]:
        """The representative with the best acquisition value under the last fitted model.
        Ties (a flat surrogate: nothing has improved for a while) are broken by a generator
        seeded with (seed, observations told), so replay stays exact and a flat surrogate
        does not ask the same representative forever."""
        from skopt.acquisition import gaussian_ei, gaussian_lcb, gaussian_pi

        assert self._opt is not None and self.candidates is not None
        model = self._opt.models[-1]
        X = self._opt.space.transform([[c[d.name] for d in self.free] for c in self.candidates])
        y_opt = float(min(self._opt.yi))
        if self._prior_at is not None:  # skopt was told y - prior: add the prior back
            model = _PriorMean(model, self._prior_at)
            y_opt = min(self.told_y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.acq_func == "LCB":
                score = -gaussian_lcb(X, model)
            elif self.acq_func == "PI":
                score = gaussian_pi(X, model, y_opt=y_opt)
            else:  # EI, and gp_hedge's default member
                score = gaussian_ei(X, model, y_opt=y_opt)
        top = float(max(score))
        tied = [i for i in range(len(score)) if float(score[i]) >= top - 1e-12 * max(1.0, abs(top))]
        pick = random.Random(f"cambrian-bo-tie|{self.seed}|{self.n_told}").choice(tied)
        return self.candidates[pick]

    def tell(self, point: dict[str, Any], y: float) -> None:
        self._tell_model(point, y)
        self.n_told += 1

    def _tell_model(self, point: dict[str, Any], y: float) -> None:
        self._check(point)
        if not math.isfinite(y):
            raise ValueError(f"objective must be finite, got {y!r}")
        self.told_y.append(float(y))
        if self._opt is not None:
            x = [point[d.name] for d in self.free]
            told = float(y) - (self.prior(point) if self.prior is not None else 0.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._opt.tell(x, told)


class _PriorMean:
    """A fitted GP seen through a prior mean: predictions at the representatives are
    ``prior + GP`` (the GP itself was fitted to ``y - prior``), so skopt's acquisition
    functions apply unchanged."""

    def __init__(self, model: Any, prior_at: Sequence[float]) -> None:
        self.model = model
        self.prior_at = prior_at

    def predict(self, X: Any, return_std: bool = False) -> Any:
        import numpy as np

        out = self.model.predict(X, return_std=return_std)
        offset = np.asarray(self.prior_at, dtype=float)
        return (out[0] + offset, out[1]) if return_std else out + offset


def _representatives(dims: Sequence[Dimension], project: Callable[[dict[str, Any]], dict[str, Any]],
                     limit: int) -> list[dict[str, Any]] | None:
    """The distinct ``project`` images of the whole space, in a fixed order; None when the
    space has more than ``limit`` points (then skopt's sampling is used after all)."""
    total = 1
    for d in dims:
        total *= d.size
    if total > limit:
        return None
    out: dict[tuple, dict[str, Any]] = {}
    for combo in itertools.product(*(d.values for d in dims)):
        p = project({d.name: v for d, v in zip(dims, combo)})
        out.setdefault(tuple(p[d.name] for d in dims), p)
    return list(out.values())


def make_optimizer(dims: Sequence[Dimension], *, kind: str = "bo", seed: int = 0, **kw: Any) -> Optimizer:
    """``kind``: ``bo`` (scikit-optimize) or ``random``."""
    if kind == "random":
        return RandomOptimizer(dims, seed=seed)
    if kind == "bo":
        return BayesOptimizer(dims, seed=seed, **kw)
    raise ValueError(f"unknown optimizer kind {kind!r} (bo | random)")


def rebuild(
    dims: Sequence[Dimension],
    history: Iterable[tuple[dict[str, Any], float]],
    *,
    kind: str = "bo",
    seed: int = 0,
    told: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    **kw: Any,
) -> Optimizer:
    """A fresh optimizer with ``history`` replayed as ask→tell pairs, in order.

    ``told(point)`` is the point that was told for an asked one (identity by default), as
    the caller told it the first time. Raises :class:`ReplayMismatch` when a re-asked point
    differs from the stored one."""
    opt = make_optimizer(dims, kind=kind, seed=seed, **kw)
    for i, (stored, y) in enumerate(history):
        asked = opt.ask()
        if asked != stored:
            raise ReplayMismatch(
                f"observation {i}: the optimizer re-asked {asked} but the history holds {stored}; "
                "the run cannot be resumed exactly (optimizer library, space or seed changed?)"
            )
        opt.tell(told(stored) if told is not None else stored, y)
    return opt
