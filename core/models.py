"""Domain models (pydantic v2). Wire formats live in ``rig.schema`` and are re-exported."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rig.schema import (  # noqa: F401  (re-exported for core users)
    CheckResult,
    Contract,
    Diagnostics,
    Entry,
    Expectation,
    Failure,
    Manifest,
    SpecVector,
    StageCheck,
    TokenUsage,
    ViabilityReport,
)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Outcome(str, Enum):
    IN_PROGRESS = "in_progress"
    TESTED = "tested"
    PROMOTED = "promoted"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Outcome.PROMOTED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.INTERRUPTED})

# in_progress -> failed covers generations that never reached the rig (LLM or parse failure).
TRANSITIONS: dict[Outcome, frozenset[Outcome]] = {
    Outcome.IN_PROGRESS: frozenset(
        {Outcome.TESTED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.INTERRUPTED}
    ),
    Outcome.TESTED: frozenset({Outcome.PROMOTED, Outcome.FAILED}),
    Outcome.PROMOTED: frozenset(),
    Outcome.FAILED: frozenset(),
    Outcome.TIMEOUT: frozenset(),
    Outcome.INTERRUPTED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


def check_transition(old: Outcome | str, new: Outcome | str) -> None:
    old, new = Outcome(old), Outcome(new)
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"outcome cannot go from {old.value} to {new.value}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class SpecOrigin(str, Enum):
    HUMAN = "human"
    MUTATION = "mutation"
    AMENDMENT = "amendment"
    IMPORT = "import"


class SpecVersion(_Model):
    hash: str
    parent_hash: str | None = None
    origin: SpecOrigin = SpecOrigin.HUMAN
    label: str = ""
    created_at: str = Field(default_factory=utcnow)


class Generation(_Model):
    number: int = Field(ge=0)
    parent: int | None = None
    campaign_id: str | None = None
    spec_hash: str
    outcome: Outcome = Outcome.IN_PROGRESS
    artifact_hash: str | None = None
    status: Literal["viable", "non-viable"] | None = None
    failure_stage: str | None = None
    reason: str | None = None
    attempt: int = 0
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)

    def advance(self, new: Outcome, reason: str | None = None) -> "Generation":
        check_transition(self.outcome, new)
        return self.model_copy(update={"outcome": new, "reason": reason or self.reason, "updated_at": utcnow()})


class CampaignSettings(_Model):
    spec_hash: str
    generations: int = Field(default=6, ge=1, le=100_000)
    parallelism: int = Field(default=1, ge=1, le=64)
    provider: Literal["sim", "anthropic", "openai", "replay"] = "sim"
    model: str = "sim-1"
    # the server (anthropic, openai): None is the provider's default (ANTHROPIC_BASE_URL or the
    # Anthropic API; the OpenAI API). The key is never stored: api_key_env names its variable.
    base_url: str | None = None
    api_key_env: str | None = None
    context_window: int | None = Field(default=None, ge=256)  # None: ask the server
    continuation: Literal["prefill", "continue_final_message", "instruct"] | None = None
    escalation_model: str | None = None
    allowed_models: list[str] = Field(default_factory=list)
    seed: int = 0
    max_retries: int = Field(default=1, ge=0, le=10)
    budget_usd: float | None = Field(default=None, ge=0)
    budget_tokens: int | None = Field(default=None, ge=0)
    budget_wall_s: float | None = Field(default=None, ge=0)
    backend: Literal["docker", "bwrap", "none"] = "docker"
    cassette: str | None = None
    max_tokens: int = Field(default=32000, ge=256)
    max_repairs: int = Field(default=2, ge=0, le=5)
    max_continuations: int = Field(default=3, ge=0, le=20)
    generation_timeout_s: float = Field(default=1800.0, gt=0)
    # Reproduction (DESIGN §7): for a spec that declares it, ask promoted offspring to breed
    # through the LLM gateway — every one, a sample (this share, decided per generation by a
    # hash of the campaign's seed and draw, so a resumed campaign samples the same), or off.
    reproduction: Literal["off", "every", "sample"] = "off"
    # what counts as a success in evolution's statistics (the engine itself ignores it):
    # "viability"; "fertility" — viable AND, when its fertility was tested, fertile;
    # "verified" — viable AND no undismissed examiner probe failed (core/evolution/README.md)
    fitness: Literal["viability", "fertility", "verified"] = "viability"
    reproduction_rate: float = Field(default=0.25, gt=0, le=1)
    # per reproduction test, enforced by the gateway
    reproduction_calls: int = Field(default=6, ge=1, le=100)
    reproduction_tokens: int = Field(default=200_000, ge=1000)
    reproduction_wall_s: float = Field(default=900.0, gt=0)
    # Sealed vectors (the spec's `sealed-vectors` block, never shown to the writer): "gate" —
    # a failed one makes the artifact non-viable (rule `sealed_vectors`); "score" — only
    # measured (the generalisation gap), the verdict is Layer 1's.
    sealed_vectors: Literal["gate", "score"] = "gate"
    # Layer 2, the dual-blind examiner (core.examiner): probes written once per spec version
    # and examiner model by a call that sees only the writer-visible spec. "score" (default) —
    # measured (examiner_pass_rate), the verdict stays Layer 1's: an examiner can be wrong, and
    # until a person has looked at its suspect probes they should not fail anyone; "gate" — a
    # failed (undismissed) probe makes the artifact non-viable (rule `examiner_probes`); "off".
    examiner: Literal["off", "score", "gate"] = "score"
    examiner_model: str | None = None  # None: the campaign's model
    # Layer 3, the red team (core.redteam, docs/redteam.md): after a generation's first verdict
    # is viable, one `redteam` call reads the spec and its code and proposes probes that should
    # break it; the rig runs them in a second run. Costs one call and one rig run per tested
    # generation, so "off" by default; "sample" tests this share of draws (a hash of the seed
    # and the draw, like reproduction's, independent of it); "every" tests each viable one.
    redteam: Literal["off", "sample", "every"] = "off"
    redteam_rate: float = Field(default=0.25, gt=0, le=1)
    # a viable generation whose redteam_score (1 − confirmed/proposed) is below this becomes
    # non-viable (rule `redteam_threshold`); None: the score is only measured. The original
    # Cambrian specified 0.7.
    redteam_threshold: float | None = Field(default=None, ge=0, le=1)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        from core.llm.urls import normalize

        return normalize(v)

    @field_validator("model")
    @classmethod
    def _model_nonempty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model must not be empty")
        return v


class LLMCall(_Model):
    """One ledger entry: every call, failed ones too."""

    id: int | None = None
    generation: int | None = None
    campaign_id: str | None = None
    provider: str
    model: str
    purpose: Literal["generate", "continue", "repair", "mutate", "reproduction", "examine",
                     "redteam", "other"] = "generate"
    request_id: str | None = None
    started_at: str = Field(default_factory=utcnow)
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    usage_json: str = "{}"
    cost_usd: float = 0.0
    outcome: Literal["ok", "error", "retried", "refused"] = "ok"
    error: str | None = None
    fallback_from: str | None = None
    simulated: bool = False
    # core.llm.pricing: list | configured | local | unknown | simulated. "unknown": cost_usd
    # is 0 because nobody knows the price — show it as unknown, never as free.
    price_source: str = "list"
    usage_estimated: bool = False  # the server reported no usage: the counts are estimates

    @property
    def price_known(self) -> bool:
        return self.price_source != "unknown"


class RigRun(_Model):
    generation: int
    run_id: str
    backend: str
    container_id: str | None = None
    started_at: str = Field(default_factory=utcnow)
    finished_at: str | None = None
    stage_ms: dict[str, int] = Field(default_factory=dict)
    total_ms: int | None = None
    first_output_ms: int | None = None
    oom_killed: bool = False
    rig_error: str | None = None


class AmendmentStatus(str, Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    EDITED = "edited"
    REJECTED = "rejected"


class Amendment(_Model):
    id: int | None = None
    campaign_id: str | None = None
    spec_hash: str
    section: str
    text: str
    feature: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    status: AmendmentStatus = AmendmentStatus.PENDING
    result_spec_hash: str | None = None
    created_at: str = Field(default_factory=utcnow)


class Observation(_Model):
    run_id: str
    index: int = Field(ge=0)
    params: dict[str, Any]
    spec_hash: str | None = None
    parent_spec_hash: str | None = None
    campaign_id: str | None = None
    viability_rate: float | None = None
    interval: tuple[float, float] | None = None
    generations: int = 0
    accepted: bool = False
    rejected_reason: str | None = None
    created_at: str = Field(default_factory=utcnow)
