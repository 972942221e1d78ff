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

One-shot moves (a model, a hat, an amendment) are left out on purpose: each improves a climb
at most once, so an earlier run's gain for them is stale from the new run's first incumbent
on (a warm start that included them made BO chase them; bench/README.md). The sweep design
tries each of them once anyway.

The prior is computed when a run is created and frozen into its settings, so a resume
replays exactly what the first start did, whatever runs finish in the meantime.
"""

from __future__ import annotations

from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = ["OperatorPrior", "PriorEntry", "REPEATABLE", "climbing_part", "home_prior", "learn_prior"]

REPEATABLE = ("rewrite", "crossover")
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


class OperatorPrior(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[str] = Field(default_factory=list)  # the runs it was learned from
    observations: int = 0
    entries: list[PriorEntry] = Field(default_factory=list)

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


def learn_prior(histories: dict[str, list[tuple[dict[str, Any], float]]]) -> OperatorPrior | None:
    """The prior from earlier runs' ``(params, objective)`` histories (run id → history);
    None when they hold no climbing observation of a repeatable operator."""
    op_sum: dict[tuple, float] = {}
    op_n: dict[tuple, int] = {}
    sec_sum: dict[tuple, float] = {}
    sec_n: dict[tuple, int] = {}
    used: list[str] = []
    total = 0
    for rid, history in histories.items():
        n_before = total
        for params, y in climbing_part(history):
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
        if total > n_before:
            used.append(rid)
    if not total:
        return None
    op_mean = {k: op_sum[k] / (op_n[k] + K_OPERATOR) for k in op_sum}
    entries = [PriorEntry(operator=k[0], intent=k[1], n=op_n[k], mean=op_mean[k]) for k in sorted(op_sum, key=str)]
    entries += [PriorEntry(operator=k[0], intent=k[1], section=k[2], n=sec_n[k],
                           mean=(sec_sum[k] + K_SECTION * op_mean[k[:2]]) / (sec_n[k] + K_SECTION))
                for k in sorted(sec_sum, key=str)]
    return OperatorPrior(runs=used, observations=total, entries=entries)


def home_prior(store: Any, *, provider: str, objective: str, gain_scale: float,
               exclude: Iterable[str] = (), max_runs: int = MAX_RUNS) -> OperatorPrior | None:
    """The prior learned from the newest ``max_runs`` evolution runs in ``store`` that were
    told the same objective (kind and scale) with the same provider and have a climbing
    observation of a repeatable operator; other runs are skipped."""
    from core.evolution import records as rec
    from core.evolution.settings import EvolutionSettings
    from core.evolution.state import RunState, campaign_counts

    skip = set(exclude)
    histories: dict[str, list[tuple[dict[str, Any], float]]] = {}
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
        if not any(p.get("operator") in REPEATABLE for p, _ in climbing_part(state.history)):
            continue  # taught nothing: does not take one of the max_runs places
        histories[rid] = state.history
        if len(histories) >= max_runs:
            break
    return learn_prior(histories)
