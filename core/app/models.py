"""Typed read models: what the TUI and the command line show, built off the UI thread.

Immutable values (frozen dataclasses here; ``evolution_views`` holds the pydantic models
of an evolution run, which mirror ``cambrian evolve status --json``). Whoever builds one never touches it again, so
the UI thread may read it freely. Every figure is computed once, here, so two panes (or
the TUI and ``--json``) cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic models: imported where they are built (keeps the TUI's start fast)
    from core.app.layers import LayerView
    from core.app.reproduction import ReproductionView
    from core.models import LLMCall, ViabilityReport

BAD_OUTCOMES = ("failed", "timeout", "interrupted")
FINISHED_OUTCOMES = ("promoted", "failed", "timeout", "interrupted")
RUNNING_OUTCOMES = ("in_progress", "tested")
STAGES = ("manifest", "build", "test", "start", "health")
LIVE_STATES = ("pending", "running", "paused")
TERMINAL_STATES = ("completed", "stopped", "aborted", "crashed")  # a campaign or run that has ended
# states whose stored reason still describes the campaign (a resumed one keeps the old
# "paused by user" in the row until something writes a new reason)
REASON_STATES = ("paused", "stopped", "crashed", "aborted", "completed")


def short_hash(h: str | None, n: int = 12) -> str:
    if not h:
        return "-"
    return h.removeprefix("sha256:")[:n]


# --- campaigns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignView:
    id: str
    kind: str
    state: str
    stored_reason: str | None
    spec_hash: str
    settings: dict[str, Any]
    created_at: str
    updated_at: str
    counts: dict[str, int]
    engine_alive: bool
    engine_pid: int | None
    tokens: int
    cost_usd: float
    spec_label: str = ""
    judged: int = 0  # promoted or failed with a rig verdict: the rate's denominator
    evolution_child: bool = False  # run by an evolution run (F5), not directly
    unpriced_calls: int = 0  # calls at an unknown price: cost_usd is then a lower bound (fmt.money)

    @property
    def reason(self) -> str | None:
        """Why the campaign is in its state; None while it runs (an old reason is stale)."""
        return self.stored_reason if self.state in REASON_STATES else None

    @property
    def provider(self) -> str:
        return str(self.settings.get("provider", "?"))

    @property
    def model(self) -> str:
        return str(self.settings.get("model", "?"))

    @property
    def target(self) -> int:
        return int(self.settings.get("generations") or 0)

    @property
    def finished(self) -> int:
        return sum(self.counts.get(o, 0) for o in FINISHED_OUTCOMES)

    @property
    def interrupted(self) -> int:
        return self.counts.get("interrupted", 0)

    @property
    def done(self) -> int:
        """Generations that count towards the target: the engine redoes interrupted ones."""
        return self.finished - self.interrupted

    @property
    def progress(self) -> str:
        """"done/target", the one progress figure every pane shows."""
        return f"{self.done}/{self.target}" if self.target else f"{self.done}/{self.total - self.interrupted}"

    @property
    def viability(self) -> float | None:
        return self.viable / self.judged if self.judged else None

    @property
    def viable(self) -> int:
        return self.counts.get("promoted", 0)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(o, 0) for o in BAD_OUTCOMES)

    @property
    def running(self) -> int:
        return sum(self.counts.get(o, 0) for o in RUNNING_OUTCOMES)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def simulated(self) -> bool:
        return self.provider == "sim"

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def stalled(self) -> bool:
        """Says it runs, but no engine holds it (killed): resume restarts it."""
        return self.state == "running" and not self.engine_alive

    @property
    def state_label(self) -> str:
        if self.engine_alive and self.state == "running":
            return "running●"
        return "stalled" if self.stalled else self.state

    def can(self, action: str) -> bool:
        """Whether pause / resume / abort applies now (an evolution's campaign is driven by
        its run: run alone, it would go on outside the run's control)."""
        if self.evolution_child:
            return False
        if action == "resume":
            return self.state == "paused" or (self.state in ("crashed", "stopped", "running")
                                               and not self.engine_alive)
        if action == "pause":  # only an engine can pause
            return self.live and self.state != "paused" and self.engine_alive
        if action == "abort":  # with no engine, the record is closed directly
            return self.live
        return False


@dataclass(frozen=True)
class StatusView:
    campaign: CampaignView | None
    engines_alive: int
    any_simulated: bool
    home: str
    hosts: tuple[tuple[str, str | None], ...] = ()  # rig hosts (name, drained reason); () = local only


# --- generations and lineage ------------------------------------------------------------------


@dataclass
class LineageModel:
    """The generation tree of one campaign (or of everything), built off the UI thread.

    The display flattens each line of descent: a generation's *heir* (the child that
    continues the longest promoted line) is shown as its next sibling, not nested, so a
    10k-generation campaign does not indent 6000 levels deep. The other children (failed
    attempts, side branches) nest under their parent.
    """

    campaign_id: str | None
    numbers: list[int]
    parent: dict[int, int | None]
    outcome: dict[int, str]
    stage: dict[int, str | None]
    children: dict[int, list[int]]
    heir: dict[int, int]
    spine: list[int]
    signature: tuple
    counts: Counter = field(default_factory=Counter)
    failed: list[int] = field(default_factory=list)
    bred: dict[int, int] = field(default_factory=dict)      # bred generation -> its breeder
    fertility: dict[int, str] = field(default_factory=dict)  # breeder -> fertile | infertile | error

    @property
    def running(self) -> list[int]:
        """Generations in flight, oldest first."""
        return [n for n in self.numbers if self.outcome.get(n) in RUNNING_OUTCOMES]

    @property
    def latest_running(self) -> int | None:
        r = self.running
        return r[-1] if r else None

    def offspring(self, n: int) -> list[int]:
        """Children shown nested under n (everything but its heir)."""
        h = self.heir.get(n)
        return [c for c in self.children.get(n, ()) if c != h]

    def spine_position(self, n: int) -> int | None:
        """Index in the flattened top-level list of the ancestor on it (or n itself)."""
        idx = self._spine_index
        seen = 0
        cur: int | None = n
        while cur is not None and seen < 1_000_000:
            if cur in idx:
                return idx[cur]
            cur = self.parent.get(cur)
            seen += 1
        return None

    def path_to(self, n: int) -> list[int]:
        """Generations from the spine ancestor down to n (inclusive, spine first)."""
        out: list[int] = []
        cur: int | None = n
        while cur is not None and cur in self.parent:
            out.append(cur)
            if cur in self._spine_index:
                break
            cur = self.parent.get(cur)
        return list(reversed(out))

    @property
    def _spine_index(self) -> dict[int, int]:
        idx = self.__dict__.get("_spine_idx")
        if idx is None:
            idx = {n: i for i, n in enumerate(self.spine)}
            self.__dict__["_spine_idx"] = idx
        return idx


@dataclass(frozen=True)
class SeriesPoint:
    number: int
    rate: float
    lo: float
    hi: float


@dataclass
class CampaignSummary:
    """Headline figures and chart series of a campaign (or of everything)."""

    campaign_id: str | None
    viability_rate: float | None
    viability_interval: tuple[float, float] | None
    generations: int
    done: int  # finished and counted (interrupted ones are redone)
    target: int | None  # the campaign's N (None: all generations)
    viable: int
    failed: int
    interrupted: int
    running: int
    tokens: int
    cost_usd: float
    failure_stages: dict[str, int]
    cost_per_viable: float | None  # None: nothing viable, or a call's price is unknown
    trend: list[SeriesPoint]
    cost_x: list[int]
    cost_cum: list[float]
    tokens_cum: list[int]
    tests_x: list[int]
    tests_run: list[int]
    tests_passed: list[int]
    signature: tuple = ()
    unpriced_calls: int = 0  # calls at an unknown price: cost_usd is then a lower bound (fmt.money)
    # reproduction: offspring asked to breed whose test decided (fertile or infertile; an
    # error is no verdict), the fertile ones, and the running fertility rate by breeder
    fertility_tested: int = 0
    fertile: int = 0
    fertility_trend: list[SeriesPoint] = field(default_factory=list)
    # visible vs sealed vectors and the generalisation gap (core.engine.summary.generalisation);
    # None when no report ran a sealed vector
    sealed: dict[str, Any] | None = None
    # Layer 2 (core.examiner.service.campaign_examiner): the pooled pass rate of the examiner's
    # probes, and the layer's figures — probe set, viability if it gated, suspect probes;
    # None when the campaign has the examiner off (or for all campaigns at once)
    examiner_pass_rate: float | None = None
    examiner: dict[str, Any] | None = None
    # Layer 3 (core.redteam.service.campaign_redteam): generations tested, mean score and its
    # min/median/max, confirmed violations, threshold failures, cost; None when it is off
    redteam: dict[str, Any] | None = None
    # the fitness pane's Layers chart: per layer, (generation numbers, rates in [0, 1]) —
    # "visible" vectors, "sealed" vectors, "examiner" (dismissed probes left out), "redteam"
    # score; a layer that never ran is absent
    layer_series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    @property
    def progress(self) -> str:
        """Same figure as ``CampaignView.progress``."""
        return f"{self.done}/{self.target}" if self.target else f"{self.done}/{self.generations - self.interrupted}"


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: str  # added | removed | modified | same
    added: int
    removed: int
    lines: tuple[str, ...]  # unified diff lines (without trailing newlines)


@dataclass(frozen=True)
class CheckRow:
    """One line of a viability report as the inspector lists it: a stage, or a failed
    test / vector / contract nested beneath it (each check once, with everything known)."""

    key: str
    depth: int
    kind: str  # stage | test | vector | contract | endpoint
    stage: str
    name: str
    passed: bool | None  # None: did not run
    duration: str
    detail: str
    error: str = ""
    location: str = ""
    body_excerpt: str = ""

    @property
    def failed(self) -> bool:
        return self.passed is False


@dataclass
class GenerationDetail:
    number: int
    parent: int | None
    campaign_id: str | None
    spec_hash: str
    outcome: str
    status: str | None
    failure_stage: str | None
    reason: str | None
    attempt: int
    artifact_hash: str | None
    created_at: str
    updated_at: str
    report: "ViabilityReport | None"  # the typed report (None: none yet, or see report_problem)
    report_raw: dict[str, Any] | None  # the stored JSON, as written
    report_problem: str | None  # why the stored JSON is not a valid report (imported history)
    check_rows: tuple[CheckRow, ...]
    files: dict[str, bytes]
    parent_artifact: str | None
    parent_files: dict[str, bytes] | None
    llm_calls: "tuple[LLMCall, ...]"
    log_lines: int = 0
    diffs: list[FileDiff] | None = None  # against the parent's artifact (None: no parent artifact)
    failed_numbers: tuple[int, ...] = ()  # failures of the same campaign, to jump between
    bred_by: int | None = None  # an offspring, not the engine, wrote this one
    reproduction: "ReproductionView | None" = None  # this offspring's fertility test
    layers: "tuple[LayerView, ...]" = ()  # the hidden probe layers that judged it (core.app.layers)

    @property
    def diagnostics(self) -> dict[str, Any]:
        return (self.report_raw or {}).get("diagnostics") or {}

    @property
    def simulated(self) -> bool:
        return any(c.simulated for c in self.llm_calls)


# --- specs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecVersionView:
    hash: str
    parent_hash: str | None
    origin: str  # human | mutation | amendment | import | shipped (a file not stored yet)
    label: str
    created_at: str
    shipped_path: str | None = None

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        if self.shipped_path:
            return Path(self.shipped_path).stem
        return short_hash(self.hash)


@dataclass(frozen=True)
class SpecChoice:
    """One entry of the spec chooser: a stored version, a shipped genome or a file in the
    spec folder. ``problem`` is the first ``spec check`` error (such a file cannot start)."""

    key: str  # the spec's hash (a file that cannot be read: its path)
    title: str
    kind: str  # shipped | stored | file
    origin: str  # human | mutation | amendment | import | shipped | file
    hash: str | None
    path: str | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def label(self) -> str:
        tag = {"shipped": "shipped", "file": "file"}.get(self.kind, self.origin)
        if self.problem:
            return f"✗ {self.title}  ({tag}: fails spec check)"
        return f"{self.title}  ({tag}, {short_hash(self.hash, 8)})"


@dataclass(frozen=True)
class SpecDoc:
    """A spec text with the structure the diff view marks."""

    hash: str
    title: str
    text: str
    lines: tuple[str, ...]
    section_starts: dict[int, str]  # 0-based line index -> section starting there
    section_of: tuple[str, ...]  # 0-based line index -> its section
    frozen: tuple[tuple[int, int, str], ...]  # 0-based inclusive ranges with the block name


@dataclass(frozen=True)
class SearchHit:
    kind: str  # generation | campaign | spec | evolution
    key: str
    label: str
    detail: str


# --- amendments ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmendmentView:
    id: int
    campaign_id: str | None
    spec_hash: str
    section: str
    text: str
    feature: str
    status: str
    result_spec_hash: str | None
    created_at: str
    evidence: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def q(self) -> float | None:
        q = self.evidence.get("q")
        return q if isinstance(q, (int, float)) else None

    @property
    def pending(self) -> bool:
        return self.status == "pending"


@dataclass(frozen=True)
class AmendmentPreview:
    """The spec before and after an amendment (``problem``: why it cannot apply)."""

    amendment_id: int
    edited: str | None
    old: SpecDoc | None
    new: SpecDoc | None
    applied: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class RunRow:
    """One line of the evolution run list."""

    id: str
    state: str
    observations: int
    best_rate: float | None
    alive: bool
    created_at: str | None = None
    error: str | None = None
