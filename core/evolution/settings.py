"""Evolution run settings and the search space they define.

The run row is a ``campaigns`` row with ``kind="evolution"``; its settings dict is an
:class:`EvolutionSettings`. Everything a resume needs to behave exactly like the first
start is frozen into it at creation: the hats' texts, the accepted amendments and pending
distiller proposals, the list of mutable sections and the model choices — later edits of
``spec/hats`` or newly accepted amendments do not change a running evolution.
"""

from __future__ import annotations

import hashlib
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.evolution.hats import Hat
from core.evolution.operators import INTENTS, OPERATORS
from core.evolution.optimizer import Choice, Dimension
from core.evolution.prior import OperatorPrior

__all__ = ["ACTIVE", "EvolutionSettings", "canonical", "deferred_points", "derive_seed", "search_space",
           "sweep_points",
           "DONOR_RANKS", "SIM_MODELS"]

DONOR_RANKS = 3
SIM_MODELS = ["sim-1", "sim-1-lite", "sim-1-pro"]


class HatSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    fragment: str


class AmendmentSpec(BaseModel):
    """An amendment the ``amend`` operator can insert: one a person accepted (or edited),
    or a distiller proposal not yet reviewed (``status="pending"``), which is screened like
    any other variant; ``evidence`` is the distiller's summary, recorded with each use."""

    model_config = ConfigDict(extra="forbid")
    id: int | None = None
    section: str
    text: str
    status: Literal["accepted", "edited", "pending"] = "accepted"
    feature: str | None = None
    evidence: dict | None = None


class EvolutionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_spec_hash: str
    provider: Literal["sim", "anthropic", "openai", "replay"] = "sim"
    # the run's server (core.llm.config): a model choice without "@url" uses it
    base_url: str | None = None
    api_key_env: str | None = None
    context_window: int | None = Field(default=None, ge=256)
    continuation: Literal["prefill", "continue_final_message", "instruct"] | None = None
    model: str = "sim-1"  # the base spec runs with it; the first incumbent
    # choices of the model operator; each may name its provider and server, so one run can
    # mix them: "[provider:]model[@base_url]" (core.llm.config.ModelRef)
    models: list[str] = Field(default_factory=list)
    mutation_model: str | None = None  # model of rewrite calls (default: ``model``)
    cassette: str | None = None
    seed: int = 0
    budget_generations: int = Field(default=120, ge=1)
    budget_usd: float | None = Field(default=None, ge=0)
    screen_generations: int = Field(default=4, ge=1)
    full_generations: int = Field(default=12, ge=1)
    parallelism: int = Field(default=2, ge=1, le=64)
    backend: Literal["docker", "bwrap", "none"] = "docker"
    max_observations: int | None = Field(default=None, ge=1)
    accept_probability: float = Field(default=0.9, gt=0.5, lt=1.0)
    optimizer: Literal["bo", "random"] = "bo"
    n_initial_points: int = Field(default=6, ge=1)
    # "sweep": the BO's initial points are every one-shot choice once (see sweep_points);
    # "random": n_initial_points random ones. Runs stored without the field were random.
    initial_design: Literal["random", "sweep"] = "random"
    # "log-gain": the optimizer is told -log(1 + gain / gain_scale) (state.py says why);
    # "gain": the gain as it is. Runs stored without the field were told the gain.
    objective: Literal["gain", "log-gain"] = "gain"
    # "fertility": every campaign of the run breeds each promoted generation (reproduction
    # every) and a viable but infertile one counts as a failure (core/evolution/README.md);
    # "verified": every campaign runs the examiner (score) and a viable generation that fails
    # one of its undismissed probes counts as a failure
    fitness: Literal["viability", "fertility", "verified"] = "viability"
    gain_scale: float = Field(default=0.002, gt=0)
    base_estimator: str = "GP"
    acq_func: str = "EI"
    max_tokens: int = Field(default=32000, ge=256)
    generation_timeout_s: float = Field(default=1800.0, gt=0)
    sections: list[str] = Field(default_factory=list)
    system_section: str = "System Prompt"
    hats: dict[str, HatSpec] = Field(default_factory=dict)
    amendments: list[AmendmentSpec] = Field(default_factory=list)
    # BO's prior mean for rewrites and crossovers, learned from the home's earlier runs when
    # this run was created (prior.py); None: a cold start (and every run stored before it).
    prior: OperatorPrior | None = None

    @model_validator(mode="after")
    def _fill(self) -> "EvolutionSettings":
        if not self.models:
            self.models = [self.model]
        if self.model not in self.models:
            self.models = [self.model] + self.models
        from core.llm.config import ModelRef

        for m in self.models:  # a bad reference fails at creation, not mid-run
            ModelRef.parse(m, provider=self.provider, base_url=self.base_url)
        if not self.sections:
            raise ValueError("an evolution needs at least one mutable section")
        return self

    @property
    def objective_scale(self) -> float | None:
        """``gain_scale`` when gains are told on a log scale, else None."""
        return self.gain_scale if self.objective == "log-gain" else None

    @property
    def rewrite_model(self) -> str:
        return self.mutation_model or self.model

    def hat_objects(self) -> dict[str, Hat]:
        """The run's frozen hats, as the operators take them."""
        return {name: Hat(name, h.description, h.fragment) for name, h in self.hats.items()}

    def operators(self) -> list[str]:
        """Operators that can do something under these settings (always ``rewrite`` and
        ``crossover``; ``amend`` with accepted amendments or proposals, ``hat`` with hats,
        ``model`` with more than one model)."""
        out = []
        for op in OPERATORS:
            if op == "amend" and not self.amendments:
                continue
            if op == "hat" and not self.hats:
                continue
            if op == "model" and len(self.models) < 2:
                continue
            out.append(op)
        return out


def search_space(s: EvolutionSettings) -> list[Dimension]:
    """The structured space the optimizer searches (README: "The space")."""
    return [
        Choice("operator", tuple(s.operators())),
        Choice("section", tuple(s.sections)),
        Choice("intent", tuple(INTENTS)),
        Choice("hat", tuple(sorted(s.hats)) or ("none",)),
        Choice("model", tuple(s.models)),
        Choice("amendment", tuple(range(max(1, len(s.amendments))))),
        Choice("donor", tuple(range(DONOR_RANKS))),
    ]


# The dimensions each operator reads; the others are ignored by that operator.
ACTIVE: dict[str, tuple[str, ...]] = {
    "rewrite": ("section", "intent"),
    "amend": ("amendment",),
    "crossover": ("donor", "section"),
    "hat": ("hat",),
    "model": ("model",),
}


def canonical(point: dict, dims: list[Dimension]) -> dict:
    """The point with every dimension its operator ignores set to that dimension's first
    value. The optimizer is told canonical points (and BO asks only canonical points): all
    observations of one mutation land on one point of the surrogate instead of being
    spread over irrelevant coordinates."""
    keep = set(ACTIVE.get(point.get("operator"), ())) | {"operator"}
    return {d.name: (point[d.name] if d.name in keep else d.values[0]) for d in dims}


def _one_shot_moves(s: EvolutionSettings, dims: list[Dimension]) -> list[dict]:
    """Every one-shot choice as a canonical point, in an order fixed by the run seed."""
    ops = set(s.operators())
    moves: list[dict] = []
    if "model" in ops:
        moves += [{"operator": "model", "model": m} for m in s.models if m != s.model]
    if "hat" in ops:
        moves += [{"operator": "hat", "hat": h} for h in sorted(s.hats)]
    if "amend" in ops:
        moves += [{"operator": "amend", "amendment": k} for k in range(len(s.amendments))]
    random.Random(derive_seed(s.seed, "sweep")).shuffle(moves)
    first = {d.name: d.values[0] for d in dims}
    return [canonical({**first, **m}, dims) for m in moves]


def sweep_points(s: EvolutionSettings, dims: list[Dimension]) -> list[dict]:
    """The "sweep" initial design: every *one-shot* choice once — each model other than the
    run's own, each hat, each accepted amendment and pending proposal — as canonical points,
    in an order fixed by the run seed. A model, a hat or an amendment can improve a climb at most once (afterwards
    it is a no-op or a duplicate), so trying each early is cheap information; rewrites and
    crossovers, whose outcome differs every time, are left to the surrogate (figures in
    bench/README.md). Choices the run's prior defers (tried by earlier runs, never a gain)
    are left out (see :func:`deferred_points`); the shuffle comes first, so the others keep
    their relative order."""
    return [m for m in _one_shot_moves(s, dims) if s.prior is None or not s.prior.deferred(m)]


def deferred_points(s: EvolutionSettings, dims: list[Dimension]) -> list[dict]:
    """The one-shot choices the sweep leaves out because earlier runs never gained from them.
    BO is told each is worth 0 ("no gain", what those runs observed) before its first ask, so
    its surrogate does not see them as unexplored and spend evaluations re-checking them;
    they stay in the space and can still be asked."""
    return [m for m in _one_shot_moves(s, dims) if s.prior is not None and s.prior.deferred(m)]


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed fixed by the run seed and a purpose (e.g. ``"screen", 3``)."""
    key = "|".join(map(str, ("cambrian-evolution", seed) + parts)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF
