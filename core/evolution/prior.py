"""What earlier evolution runs in this home say about the *repeatable* mutations.

A rewrite or a crossover can be tried again and again, and whether it pays is a property of
the operator (and of the section) more than of one run: on the sim landscape an "add
guidance" rewrite improves the incumbent several times as often as a "remove" one. A cold
run cannot learn that before its first success, and its first success usually ends the
climb (bench/README.md), so a new run starts from what earlier runs observed: the mean
objective of each (operator, intent) and (operator, intent, section), shrunk towards "no
gain" when there are few observations. The optimizer uses it as the GP's prior mean
(``optimizer.BayesOptimizer(prior=...)``); this run's own observations take over as they
accumulate.

Only the **climbing part** of a run counts: its observations up to the last one that
improved on the incumbent. After that, a run that has reached its plateau tells "no gain"
for everything, which says nothing about which operator pays while a spec can still improve.

One-shot moves (a model, a hat) get no prior mean: each improves a climb at most once, so an
earlier run's gain for them is stale from the new run's first incumbent on (a warm start that
included them made BO chase them; bench/README.md). What the history does say about them is
which ones *never* paid: a model or hat that at least ``MIN_DEFER_RUNS`` earlier runs tried
while still climbing, none of them with a gain, is **deferred** — left out of the new run's
sweep design (``settings.sweep_points``) but still in the space, where BO can ask it like any
other point (it is told the choice's known value, 0, first: ``settings.deferred_points``). Screening a choice that never helped costs a campaign each time; on the sim
landscape half the sweep (3 of 6 hats, the lite model) never does. Amendments are never
deferred: they are few, and each was accepted by a person.

The prior is computed when a run is created and frozen into its settings, so a resume
replays exactly what the first start did, whatever runs finish in the meantime.
"""

from __future__ import annotations

from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = ["MIN_DEFER_RUNS", "OneShotEntry", "OperatorPrior", "PriorEntry", "REPEATABLE", "ONE_SHOT", "climbing_part", "home_prior", "learn_prior"]

REPEATABLE = ("rewrite", "crossover")
# one-shot operators and the dimension holding their choice
ONE_SHOT = {"hat": "hat", "model": "model"}
# Earlier runs that must have tried a one-shot choice, all without a gain, before it is deferred:
# one run's "no gain" can be an order effect (a hat tried after another that covers it).
MIN_DEFER_RUNS = 3
# Pseudo-counts of "no gain" (0) behind an operator's mean, and of the operator's mean behind a
# section's: with a handful of observations the prior stays close to neutral.
K_OPERATOR = 2.0
K_SECTION = 4.0
# The newest runs that taught something; older ones are left out: recent runs are the most
# relevant, and 10 is what bench/bo_vs_random.py measured the prior with. (Cost is not the
# reason: folding takes ~0.05 ms per stored observation.)
MAX_RUNS = 10


class PriorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator: str
    intent: str | None = None  # rewrites only
    section: str | None = None  # None: the operator-level entry
    n: int = Field(ge=1)
    mean: float  # shrunk mean objective (minimised: negative means "tends to gain")


class OneShotEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator: str  # "hat" | "model"
    value: str  # the hat's or the model's name
    tried: int = Field(ge=1)  # earlier runs that tried it while climbing
    gained: int = Field(ge=0)  # ... and of those, the runs where it improved the incumbent

    @property
    def deferred(self) -> bool:
        return self.gained == 0 and self.tried >= MIN_DEFER_RUNS


class OperatorPrior(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[str] = Field(default_factory=list)  # the runs it was learned from
    observations: int = 0  # climbing observations of repeatable operators behind ``entries``
    entries: list[PriorEntry] = Field(default_factory=list)
    # what the runs say about one-shot choices (stored priors without it defer nothing)
    one_shot: list[OneShotEntry] = Field(default_factory=list)

    _idx: dict[tuple, float] | None = PrivateAttr(default=None)

    def _index(self) -> dict[tuple, float]:
        if self._idx is None:
            self._idx = {(e.operator, e.intent, e.section): e.mean for e in self.entries}
        return self._idx

    def mean(self, point: dict[str, Any]) -> float:
        """The prior mean objective of a point (0 = "no gain" for anything unknown)."""
        op = point.get("operator")
        if op not in REPEATABLE:
            return 0.0
        idx = self._index()
        intent = _intent(point)
        section = point.get("section")
        if (op, intent, section) in idx:
            return idx[(op, intent, section)]
        return idx.get((op, intent, None), 0.0)

    def deferred(self, point: dict[str, Any]) -> bool:
        """Whether earlier runs tried this one-shot choice often enough, never with a gain."""
        dim = ONE_SHOT.get(point.get("operator"))
        if dim is None:
            return False
        return any(e.deferred for e in self.one_shot if e.operator == point["operator"] and e.value == point.get(dim))

    def deferred_names(self) -> list[str]:
        """e.g. ``["hat minimalist", "model sim-1-lite"]`` (display)."""
        return [f"{e.operator} {e.value}" for e in self.one_shot if e.deferred]

    def by_operator(self) -> dict[str, float]:
        """Operator-level means, e.g. ``{"rewrite add": -0.45, "crossover": 0.0}`` (display)."""
        return {(e.operator + (f" {e.intent}" if e.intent else "")): e.mean
                for e in self.entries if e.section is None}


def _intent(point: dict[str, Any]) -> str | None:
    return point.get("intent") if point.get("operator") == "rewrite" else None


def climbing_part(history: list[tuple[dict[str, Any], float]]) -> list[tuple[dict[str, Any], float]]:
    """The observations up to (and including) the last one told a gain (y < 0)."""
    last = max((i for i, (_, y) in enumerate(history) if y < 0), default=-1)
    return history[: last + 1]


def learn_prior(histories: dict[str, list[tuple[dict[str, Any], float]]],
                model_evidence: Iterable[str] | None = None, model: str | None = None) -> OperatorPrior | None:
    """The prior from earlier runs' ``(params, objective)`` histories (run id → history);
    None when they hold no climbing observation at all. ``model_evidence``: the runs whose
    model choices count as one-shot evidence (None: all) — "model X never paid" only holds
    relative to the model a run started from. ``model``: the new run's own model, never
    evidence (switching to it is a no-op for that run; its sweep leaves it out anyway)."""
    model_runs = None if model_evidence is None else set(model_evidence)

    def one_shot_key(rid: str, params: dict[str, Any]) -> tuple[str, str] | None:
        op = params.get("operator")
        if op not in ONE_SHOT:
            return None
        if op == "model" and (params.get("model") == model or (model_runs is not None and rid not in model_runs)):
            return None
        return op, str(params.get(ONE_SHOT[op]))

    op_sum: dict[tuple, float] = {}
    op_n: dict[tuple, int] = {}
    sec_sum: dict[tuple, float] = {}
    sec_n: dict[tuple, int] = {}
    used: list[str] = []
    total = 0
    tried: dict[tuple[str, str], int] = {}
    gained: dict[tuple[str, str], int] = {}
    for rid, history in histories.items():
        climb = climbing_part(history)
        if climb:
            used.append(rid)
        shots: dict[tuple[str, str], bool] = {}  # this run's one-shot choices → gained once
        for params, y in climb:
            key = one_shot_key(rid, params)
            if key is not None:
                shots[key] = shots.get(key, False) or y < 0
            op = params.get("operator")
            if op not in REPEATABLE:
                continue
            k1 = (op, _intent(params))
            k2 = k1 + (params.get("section"),)
            op_sum[k1] = op_sum.get(k1, 0.0) + y
            op_n[k1] = op_n.get(k1, 0) + 1
            sec_sum[k2] = sec_sum.get(k2, 0.0) + y
            sec_n[k2] = sec_n.get(k2, 0) + 1
            total += 1
        for key, g in shots.items():
            tried[key] = tried.get(key, 0) + 1
            gained[key] = gained.get(key, 0) + int(g)
    if not used:
        return None
    op_mean = {k: op_sum[k] / (op_n[k] + K_OPERATOR) for k in op_sum}
    entries = [PriorEntry(operator=k[0], intent=k[1], n=op_n[k], mean=op_mean[k]) for k in sorted(op_sum, key=str)]
    entries += [PriorEntry(operator=k[0], intent=k[1], section=k[2], n=sec_n[k],
                           mean=(sec_sum[k] + K_SECTION * op_mean[k[:2]]) / (sec_n[k] + K_SECTION))
                for k in sorted(sec_sum, key=str)]
    one_shot = [OneShotEntry(operator=k[0], value=k[1], tried=tried[k], gained=gained[k]) for k in sorted(tried)]
    return OperatorPrior(runs=used, observations=total, entries=entries, one_shot=one_shot)


def home_prior(store: Any, *, provider: str, objective: str, gain_scale: float, model: str | None = None,
               exclude: Iterable[str] = (), max_runs: int = MAX_RUNS) -> OperatorPrior | None:
    """The prior learned from the newest ``max_runs`` evolution runs in ``store`` that were
    told the same objective (kind and scale) with the same provider and improved on their
    base at least once; other runs are skipped. Model choices count as evidence only from
    runs that started from ``model`` (the new run's; None: none of them)."""
    from core.evolution import records as rec
    from core.evolution.settings import EvolutionSettings
    from core.evolution.state import RunState, campaign_counts

    skip = set(exclude)
    histories: dict[str, list[tuple[dict[str, Any], float]]] = {}
    same_model: list[str] = []
    for row in rec.evolution_runs(store):
        rid = row["id"]
        if rid in skip:
            continue
        try:
            s = EvolutionSettings(**row["settings"])
        except ValueError:
            continue  # a run row this version cannot read teaches nothing
        if s.provider != provider or s.objective != objective or (
                objective == "log-gain" and s.gain_scale != gain_scale):
            continue
        base_id = rec.base_campaign_id(rid)
        if not rec.campaign_exists(store, base_id):
            continue
        observations = store.observations(rid)
        if not observations:
            continue
        state = RunState.fold(store, s, campaign_counts(store, base_id), observations)
        if not climbing_part(state.history):
            continue  # never climbed, taught nothing: does not take one of the max_runs places
        histories[rid] = state.history
        if s.model == model:
            same_model.append(rid)
        if len(histories) >= max_runs:
            break
    return learn_prior(histories, model_evidence=same_model, model=model)
