"""The run's state as a pure fold over its stored observations.

Nothing here is persisted: the incumbent, the optimizer's (point, objective) history, the
donors for crossover and the map of evaluated variants are all recomputed from the
observations (and the finished campaigns they name) every time a run starts or resumes.
The same fold runs while the loop runs, so a resumed run sees exactly the state the
uninterrupted run had.

Objective (minimised by the optimizer): the negated gain over the incumbent *at the time*,
``g = max(0, rate(variant) - rate(incumbent))``, told on a log scale (``objective =
"log-gain"``, new runs) or as it is (``"gain"``, runs stored before the setting existed)::

    y = -log(1 + g / gain_scale)  or  -g        evaluated variants (full rate if any, else
                                                screening): the improvement over the incumbent
    the same with rate(earlier)                 a duplicate of an earlier evaluated variant
    y = 0                                       a no-op (identical to its parent) or a crossover
                                                with no donor yet: nothing gained
    y = REJECT_PENALTY                          refused by the grammar, or a failed rewrite call

Why a log: gains span orders of magnitude — on the sim landscape the pro model adds about
0.13, a hat 0.02–0.07, a rewrite of one section 0.001–0.01 — and the GP models them with
one output scale and one noise level. Told as they are, the sweep's big gains set the scale
and every later rewrite's gain is indistinguishable from "nothing"; on a log scale a small
gain stands well clear of zero (core/evolution/README.md has the figures).

A variant that does not beat the incumbent is worth nothing to a climb, however much worse
it is: it is never accepted. So the optimizer is told the *improvement* (clipped at zero) and
looks for the mutations that produce improvements, rather than for the ones that are
reliably harmless (removing a neutral sentence scores 0 forever and would otherwise attract
a surrogate that mostly sees losses). Points that were not run but are legitimate (no-ops,
duplicates) get what they are truly worth; only broken mutations are penalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from core.evolution.acceptance import Counts
from core.evolution.operators import Donor, Parent
from core.evolution.records import FULL_KIND
from core.evolution.settings import DONOR_RANKS, EvolutionSettings
from core.models import Observation

REJECT_PENALTY = 0.25
NOOP_PREFIX = "no-op: "
DUPLICATE_PREFIX = "duplicate: "
NO_DONOR = "no donor yet"


def campaign_counts(store: Any, campaign_id: str) -> Counts:
    """(successes, judged) of a campaign. Under fitness "fertility" a viable offspring whose
    fertility test found it infertile is a failure (weight 1: half a Prime is no Prime, and
    integer counts keep acceptance's exact Beta comparison); an `error` test (no verdict,
    e.g. the budget ran out) does not count against it. Under "verified" a viable one that
    failed an undismissed examiner probe is a failure (read afresh: a later dismissal counts)."""
    from core.engine.summary import campaign_summary

    s = campaign_summary(store, campaign_id)
    viable = int(s["viable"])
    fitness = (store.campaign(campaign_id)["settings"] or {}).get("fitness")
    if fitness == "fertility":
        infertile = sum(1 for r in store.reproductions(campaign_id) if r["status"] == "infertile")
        viable = max(0, viable - infertile)
    elif fitness == "verified":
        from core.examiner.service import campaign_examiner

        # "verified": a viable generation that failed an undismissed examiner probe is a
        # failure; one the examiner never probed (the layer was unavailable) keeps Layer 1's verdict
        ex = campaign_examiner(store, campaign_id)
        if ex is not None:
            viable = max(0, viable - (int(ex["viable"]) - int(ex["viable_all_passed"])))
    return Counts(viable, int(s["judged"]))


def objective(rate: float, incumbent_rate: float, scale: float | None = None) -> float:
    """The value told to the optimizer for an evaluated variant (minimised): the negated
    gain, or with ``scale`` the negated ``log(1 + gain / scale)``."""
    gain = max(0.0, rate - incumbent_rate)
    return -math.log1p(gain / scale) if scale is not None else -gain


def rejected_objective(reason: str, earlier_rate: float | None, incumbent_rate: float,
                       penalty: float = REJECT_PENALTY, scale: float | None = None) -> float:
    """The value told for a point that was not run; ``earlier_rate`` is a duplicate's earlier
    evaluation (None when unknown)."""
    if reason.startswith(DUPLICATE_PREFIX) and earlier_rate is not None:
        return objective(earlier_rate, incumbent_rate, scale)
    if reason.startswith(NOOP_PREFIX) or reason.startswith(NO_DONOR):
        return 0.0
    return penalty


def rank_donors(evaluated: Iterable[tuple[int, float, str]], incumbent_hash: str,
                text_of: Callable[[str], str]) -> list[Donor]:
    """Crossover donors from ``(index, rate, spec_hash)`` of evaluated variants: the best
    ``DONOR_RANKS`` distinct specs other than the incumbent's, best rate first (ties: earlier)."""
    seen: set[str] = {incumbent_hash}
    out = []
    for index, rate, h in sorted(evaluated, key=lambda e: (-e[1], e[0])):
        if h in seen:
            continue
        seen.add(h)
        out.append(Donor(text_of(h), rate, index))
        if len(out) >= DONOR_RANKS:
            break
    return out


@dataclass
class Evaluated:
    index: int  # -1 for the base
    spec_hash: str
    model: str
    counts: Counts  # the campaign behind the observation's rate
    full: Counts | None  # the full campaign's counts, when one ran

    @property
    def rate(self) -> float:
        return self.counts.rate or 0.0


@dataclass
class RunState:
    settings: EvolutionSettings
    incumbent: Evaluated
    history: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    evaluated: dict[tuple[str, str], Evaluated] = field(default_factory=dict)
    order: list[Evaluated] = field(default_factory=list)  # evaluated variants, by index
    incumbents: list[tuple[int, Evaluated]] = field(default_factory=list)  # (after obs i, incumbent)

    @classmethod
    def start(cls, settings: EvolutionSettings, base_counts: Counts) -> "RunState":
        base = Evaluated(-1, settings.base_spec_hash, settings.model, base_counts, base_counts)
        st = cls(settings, base)
        st.evaluated[(base.spec_hash, base.model)] = base
        st.incumbents.append((-1, base))
        return st

    @property
    def incumbent_rate(self) -> float:
        return self.incumbent.rate

    def parent(self, store: Any) -> Parent:
        return Parent(store.spec_text(self.incumbent.spec_hash), self.incumbent.model)

    def donors(self, store: Any) -> list[Donor]:
        return rank_donors(((e.index, e.rate, e.spec_hash) for e in self.order), self.incumbent.spec_hash,
                           store.spec_text)

    def variant_model(self, params: dict[str, Any]) -> str:
        return params["model"] if params.get("operator") == "model" else self.incumbent.model

    def objective_rejected(self, reason: str, spec_hash: str | None, model: str) -> float:
        e = self.evaluated.get((spec_hash, model)) if spec_hash is not None else None
        return rejected_objective(reason, e.rate if e is not None else None, self.incumbent_rate,
                                  scale=self.settings.objective_scale)

    def apply(self, store: Any, obs: Observation) -> float:
        """Fold one stored observation in; returns its objective value."""
        params = dict(obs.params)
        model = self.variant_model(params)
        if obs.rejected_reason is not None:
            y = self.objective_rejected(obs.rejected_reason, obs.spec_hash, model)
            self.history.append((params, y))
            return y
        assert obs.campaign_id is not None and obs.spec_hash is not None
        row = store.campaign(obs.campaign_id)
        model = row["settings"]["model"]
        counts = campaign_counts(store, obs.campaign_id)
        full = counts if row["kind"] == FULL_KIND else None
        e = Evaluated(obs.index, obs.spec_hash, model, counts, full)
        y = objective(e.rate, self.incumbent_rate, self.settings.objective_scale)
        self.history.append((params, y))
        self.evaluated.setdefault((e.spec_hash, e.model), e)
        self.order.append(e)
        if obs.accepted:
            self.incumbent = e
            self.incumbents.append((obs.index, e))
        return y

    @classmethod
    def fold(cls, store: Any, settings: EvolutionSettings, base_counts: Counts,
             observations: list[Observation]) -> "RunState":
        st = cls.start(settings, base_counts)
        for i, obs in enumerate(observations):
            if obs.index != i:
                raise RuntimeError(f"observation indexes are not contiguous: {obs.index} at position {i}")
            st.apply(store, obs)
        return st
