"""An evolution run as typed views: the shape of ``cambrian evolve status --json``
(``core.evolution.runs.run_status``), validated so the screens read attributes, not keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _View(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ObservationView(_View):
    index: int
    params: dict[str, Any] = {}
    operator: str | None = None
    detail: str = ""
    model: str | None = None
    spec_hash: str | None = None
    parent_spec_hash: str | None = None
    parent_model: str | None = None
    campaign_id: str | None = None
    screen_campaign_id: str | None = None
    full_campaign_id: str | None = None
    viability_rate: float | None = None
    viability_interval: tuple[float, float] | None = None
    gain: float | None = None
    promising: bool | None = None
    p_better: float | None = None
    generations: int = 0
    accepted: bool = False
    rejected_reason: str | None = None

    @property
    def outcome(self) -> str:
        from core.evolution.describe import outcome_label

        return outcome_label(self.model_dump())


class BestView(_View):
    spec_hash: str
    viability_rate: float | None = None
    viability_interval: tuple[float, float] = (0.0, 1.0)
    model: str | None = None
    observation: int | None = None
    campaign_id: str | None = None
    viable: int = 0
    judged: int = 0


class BaseCampaignView(_View):
    spec_hash: str
    campaign_id: str
    model: str | None = None
    viability_rate: float | None = None


class BudgetView(_View):
    generations: int
    generations_planned: int
    generations_run: int
    usd: float | None = None
    usd_spent: float = 0.0
    tokens: int = 0
    unpriced_calls: int = 0  # calls at an unknown price: usd_spent is then a lower bound


class StepView(_View):
    phase: str
    campaign_id: str
    done: int
    planned: int
    index: int | None = None
    detail: str = ""
    model: str | None = None


class OperatorStats(_View):
    tried: int = 0
    evaluated: int = 0
    rejected: int = 0
    noop: int = 0
    promising: int = 0
    accepted: int = 0
    mean_gain: float | None = None


class TrajectoryPoint(_View):
    after: int
    spec_hash: str
    model: str | None = None
    viability_rate: float | None = None
    viability_interval: tuple[float, float] = (0.0, 1.0)


class EvolutionRun(_View):
    id: str
    state: str
    reason: str | None = None
    created_at: str | None = None
    engine_pid: int | None = None
    engine_alive: bool = False
    spec_hash: str
    provider: str
    simulated: bool
    settings: dict[str, Any]
    prior: dict[str, Any] | None = None
    budget: BudgetView
    base: BaseCampaignView
    observations: tuple[ObservationView, ...]
    best: BestView
    trajectory: tuple[TrajectoryPoint, ...]
    operators: dict[str, OperatorStats]
    current: StepView | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "aborted")

    def can(self, action: str) -> bool:
        if action == "pause":
            return self.engine_alive and self.state != "paused"
        if action == "resume":
            return self.state == "paused" if self.engine_alive else not self.finished
        if action == "abort":
            return not self.finished
        return False


