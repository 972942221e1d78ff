"""Typed commands: everything a person can ask Cambrian to do, from the TUI or the shell.

A command is a frozen dataclass; its handler is registered with ``@handles(Command)`` and
returns a typed result, or raises ``CommandRefused`` (the reason, and the form field it
belongs to when there is one) having changed nothing. ``Cambrian.run(command)`` dispatches.
A new command is a dataclass and one handler here; the screens map keys to commands
(``cambrian_tui``) and the CLI maps arguments to them.

Handlers block (a start waits until the detached process holds its lease): the TUI runs
them in worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

from core.app.forms import FORM, FormErrors

if TYPE_CHECKING:
    from core.app.service import Cambrian

Control = Literal["pause", "resume", "abort"]


class CommandRefused(Exception):
    """Nothing was done; ``reason`` says why (and, for a start, how to fix it).
    ``errors`` maps form fields to messages when the reason belongs to fields."""

    def __init__(self, reason: str, errors: dict[str, str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.errors = dict(errors or {FORM: reason})


# --- where a spec comes from --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecRef:
    """A stored version (``hash``, a unique prefix or a label) or a spec file (``path``)."""

    hash: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if (self.hash is None) == (self.path is None):
            raise ValueError("a SpecRef is a stored version or a file, not both or neither")


# --- campaigns ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartCampaign:
    spec: SpecRef
    provider: str
    model: str | None = None  # None: the provider's default model
    generations: int = 6
    parallelism: int = 2
    max_retries: int = 1
    seed: int = 0
    budget_usd: float | None = None
    budget_tokens: int | None = None
    budget_wall_s: float | None = None
    backend: str = "docker"
    label: str = ""
    provider_settings: dict[str, Any] = field(default_factory=dict)  # e.g. {"cassette": PATH}
    # ask promoted offspring to breed (DESIGN §7): off | every | sample (at reproduction_rate,
    # None: the settings' default); only for a spec that declares `reproduce`, docker backend
    reproduction: str = "off"
    reproduction_rate: float | None = None
    # the spec's sealed vectors: "gate" (a failed one is non-viable) or "score" (only measured)
    sealed_vectors: str = "gate"
    # Layer 2, the dual-blind examiner: off | score (default: measured only) | gate; its model
    # (None: the campaign's)
    examiner: str = "score"
    examiner_model: str | None = None
    # Layer 3, the red team: off (default) | sample (at redteam_rate, None: the settings'
    # default) | every viable generation; redteam_threshold: a lower score is non-viable
    redteam: str = "off"
    redteam_rate: float | None = None
    redteam_threshold: float | None = None


@dataclass(frozen=True)
class CampaignStarted:
    campaign_id: str
    provider: str
    simulated: bool


@dataclass(frozen=True)
class ControlCampaign:
    campaign_id: str
    action: Control


@dataclass(frozen=True)
class ControlDone:
    target: str
    action: str
    result: str  # "resumed", "restarted", "pause sent to engine pid N", ...


# --- the examiner (Layer 2) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DismissProbe:
    """A person's verdict that one examiner probe is wrong: it stops counting (neither gate nor
    score) for later generations; the reports and the evidence stay."""

    spec: str  # a spec hash, unique prefix or label
    probe: str
    reason: str
    model: str | None = None  # the examiner model's set (None: every set holding the probe)


@dataclass(frozen=True)
class ProbeDismissed:
    spec_hash: str
    probe: str
    dismissals: tuple[dict[str, Any], ...]  # {model, probe, evidence: {ran, failed}, already}


# --- evolution runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartEvolution:
    spec: SpecRef
    provider: str
    model: str | None = None
    models: tuple[str, ...] = ()
    budget_generations: int = 160
    budget_usd: float | None = None
    screen_generations: int = 4
    full_generations: int = 12
    parallelism: int = 2
    seed: int = 0
    max_observations: int | None = None
    optimizer: str = "bo"
    learn: bool = True  # BO starts from what earlier runs in this home learned
    backend: str = "docker"
    label: str = ""
    provider_settings: dict[str, Any] = field(default_factory=dict)
    fitness: str = "viability"  # or "fertility": viable and fertile (core/evolution/README.md)


@dataclass(frozen=True)
class EvolutionStarted:
    run_id: str
    provider: str
    simulated: bool


@dataclass(frozen=True)
class ControlEvolution:
    run_id: str
    action: Control


@dataclass(frozen=True)
class ExportBest:
    run_id: str
    target: str | None = None  # file or folder; None: HOME/exports/


@dataclass(frozen=True)
class BestExported:
    run_id: str
    meta: dict[str, Any]


# --- the distiller and amendments ---------------------------------------------------------------------


@dataclass(frozen=True)
class Distill:
    campaign_id: str


@dataclass(frozen=True)
class Distilled:
    campaign_id: str
    analysed: int
    significant: int
    proposed: int
    skipped: tuple[str, ...]
    report: dict[str, Any]  # the distill report's JSON (``cambrian distill --json``)
    headline: str = ""  # what the run says, in one sentence (why nothing could be tested, too)
    proposal_ids: tuple[int, ...] = ()  # the amendments it created (pending)


@dataclass(frozen=True)
class AcceptAmendment:
    amendment_id: int
    text: str | None = None  # an edited text: accepted as "edited"


@dataclass(frozen=True)
class RejectAmendment:
    amendment_id: int


@dataclass(frozen=True)
class AmendmentDone:
    amendment_id: int
    action: str
    status: str
    spec_hash: str | None = None  # the new spec version an accept created
    parent_hash: str | None = None
    text: str | None = None
    confirmable: bool = False  # its campaign can be run again on the new version (ConfirmAmendment)


@dataclass(frozen=True)
class ConfirmAmendment:
    """Run an accepted amendment's spec again with the settings and seed schedule of the
    campaign it was distilled from (``generations``: default that campaign's size)."""

    amendment_id: int
    generations: int | None = None


@dataclass(frozen=True)
class ConfirmationStarted:
    amendment_id: int
    campaign_id: str
    original: str  # the campaign it repeats
    generations: int


# --- history ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportArtifacts:
    """Import an original Cambrian artifacts tree (``cambrian import cambrian-artifacts``)."""

    directory: str


@dataclass(frozen=True)
class Reverify:
    """Run stored generations through today's rig and compare verdicts, under a verdict
    profile (``cambrian`` or the ``original`` project's rules); ``on_row`` sees each row as
    it is judged."""

    generations: tuple[int, ...]
    backend: str = "docker"
    profile: str = "cambrian"
    on_row: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)
    rig_fn: Callable[..., Any] | None = field(default=None, compare=False)  # tests: another rig


# --- model servers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckConnection:
    """Reach the model server(s) a start form describes: the provider's own (with its
    settings) and, for an evolution run, every other server its model choices name
    (``[provider:]model[@base_url]``). Changes nothing; ``cambrian doctor --provider`` and
    the forms' "Test connection" show the result."""

    provider: str
    base_url: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    context_window: int | None = None
    models: tuple[str, ...] = ()  # an evolution run's model choices


@dataclass(frozen=True)
class ConnectionChecked:
    reports: tuple[Any, ...]  # core.llm.endpoints.ConnectionReport, one per server and model

    @property
    def ok(self) -> bool:
        return bool(self.reports) and all(r.ok for r in self.reports)


# --- dispatch -----------------------------------------------------------------------------------------

CommandT = TypeVar("CommandT")
HANDLERS: dict[type, Callable[["Cambrian", Any], Any]] = {}


def handles(kind: type) -> Callable[[Callable[["Cambrian", Any], Any]], Callable[["Cambrian", Any], Any]]:
    def register(fn: Callable[["Cambrian", Any], Any]) -> Callable[["Cambrian", Any], Any]:
        HANDLERS[kind] = fn
        return fn

    return register


def _spec_text(app: "Cambrian", ref: SpecRef) -> tuple[str, str]:
    """(text, label) of a spec reference, or CommandRefused at the spec field."""
    from core.app.specs import read_spec_file

    if ref.path is not None:
        try:
            return read_spec_file(ref.path)
        except ValueError as exc:
            raise CommandRefused(str(exc), {"spec": str(exc)}) from None
    try:
        h = app.reads.resolve_spec(ref.hash or "")
    except KeyError as exc:
        msg = str(exc.args[0]) if exc.args else f"unknown spec {ref.hash!r}"
        raise CommandRefused(msg, {"spec": msg}) from None
    views = {v.hash: v for v in app.reads.spec_versions()}
    v = views.get(h)
    return app.reads.spec_text(h), (v.label if v is not None else "")


def _provider_ok(name: str, settings: dict[str, Any] | None = None) -> None:
    from core.app.providers import provider

    try:
        info = provider(name)
    except ValueError as exc:
        raise CommandRefused(str(exc), {"provider": str(exc)}) from None
    problem = info.problem(settings=settings)
    if problem:
        raise CommandRefused(problem, {"provider": problem})


def _preflight(backend: str) -> None:
    """The rig must be able to judge before anything is stored or paid for."""
    from core.engine.launch import preflight_rig
    from rig.api import RigSetupError

    try:
        preflight_rig(backend or "docker")
    except RigSetupError as exc:
        raise CommandRefused(str(exc)) from None


def _settings_errors(exc: Exception) -> dict[str, str]:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for err in exc.errors():
            loc = [str(x) for x in err.get("loc", ())]
            key = loc[0] if loc else FORM
            out[key] = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        return out
    return {FORM: str(exc)}


@handles(StartCampaign)
def _start_campaign(app: "Cambrian", cmd: StartCampaign) -> CampaignStarted:
    from pydantic import ValidationError

    from core.app.providers import provider
    from core.engine.launch import create_campaign, spawn_engine
    from core.models import CampaignSettings

    _provider_ok(cmd.provider, cmd.provider_settings)
    text, label = _spec_text(app, cmd.spec)
    model = cmd.model or _server_model(cmd.provider, cmd.provider_settings) \
        or provider(cmd.provider).default_model
    data: dict[str, Any] = dict(
        spec_hash="sha256:" + "0" * 64, generations=cmd.generations, parallelism=cmd.parallelism,
        provider=cmd.provider, model=model, seed=cmd.seed,
        max_retries=cmd.max_retries, budget_usd=cmd.budget_usd, budget_tokens=cmd.budget_tokens,
        budget_wall_s=cmd.budget_wall_s, backend=cmd.backend, reproduction=cmd.reproduction,
        sealed_vectors=cmd.sealed_vectors, examiner=cmd.examiner, examiner_model=cmd.examiner_model,
        redteam=cmd.redteam, redteam_threshold=cmd.redteam_threshold, **cmd.provider_settings)
    if cmd.reproduction_rate is not None:
        data["reproduction_rate"] = cmd.reproduction_rate
    if cmd.redteam_rate is not None:
        data["redteam_rate"] = cmd.redteam_rate
    try:
        settings = CampaignSettings(**data)
    except ValidationError as exc:
        errors = _settings_errors(exc)
        raise CommandRefused("; ".join(f"{k}: {v}" for k, v in errors.items()), errors) from None
    from core.spec import check_spec

    issues = check_spec(text)
    if issues:
        msg = "spec has problems: " + "; ".join(str(i) for i in issues[:5])
        raise CommandRefused(msg, {"spec": msg})
    _reproduction_ok(settings, text)
    _preflight(settings.backend)  # the slow check last: a form mistake is answered at once
    with app.writer() as store:
        cid = create_campaign(store, settings, text, label=cmd.label or label)
    try:
        spawn_engine(app.home, cid)
    except RuntimeError as exc:
        raise CommandRefused(f"campaign {cid} was stored but its engine did not start: {exc}; "
                             f"`cambrian campaign resume {cid}` retries") from None
    return CampaignStarted(cid, cmd.provider, provider(cmd.provider).simulated)


def _reproduction_ok(settings: Any, spec_text: str) -> None:
    """Reproduction asked of a campaign that could never run it is refused, not ignored."""
    if settings.reproduction == "off":
        return
    from rig.vectors import spec_reproduce

    if spec_reproduce(spec_text)[0] is None:
        msg = (f"reproduction {settings.reproduction}: the spec declares no `reproduce` in its front "
               "matter (e.g. reproduce: {path: /generate, output-env: OUT_DIR}), so its offspring "
               "cannot be asked to breed; use reproduction off")
        raise CommandRefused(msg, {"reproduction": msg})
    if settings.backend != "docker":
        msg = (f"reproduction {settings.reproduction}: the {settings.backend} backend cannot serve the "
               "LLM gateway to an offspring; use the docker backend or reproduction off")
        raise CommandRefused(msg, {"reproduction": msg})


@handles(ControlCampaign)
def _control_campaign(app: "Cambrian", cmd: ControlCampaign) -> ControlDone:
    from core.engine.launch import control_campaign

    try:
        msg = control_campaign(app.home, cmd.campaign_id, cmd.action)
    except KeyError as exc:
        raise CommandRefused(str(exc.args[0]) if exc.args else str(exc)) from None
    except RuntimeError as exc:
        raise CommandRefused(str(exc)) from None
    return ControlDone(cmd.campaign_id, cmd.action, msg)


@handles(StartEvolution)
def _start_evolution(app: "Cambrian", cmd: StartEvolution) -> EvolutionStarted:
    from pydantic import ValidationError

    from core.app.forms import evolution_budget_problem
    from core.app.providers import provider
    from core.evolution.runs import create_run, spawn_evolution
    from core.evolution.settings import EvolutionSettings

    _provider_ok(cmd.provider, cmd.provider_settings)
    problem = evolution_budget_problem(cmd.budget_generations, cmd.screen_generations, cmd.full_generations)
    if problem:
        raise CommandRefused(problem, {"budget_generations": problem})
    text, label = _spec_text(app, cmd.spec)
    kw: dict[str, Any] = dict(
        provider=cmd.provider, seed=cmd.seed, budget_generations=cmd.budget_generations,
        budget_usd=cmd.budget_usd, screen_generations=cmd.screen_generations,
        full_generations=cmd.full_generations, parallelism=cmd.parallelism,
        max_observations=cmd.max_observations, optimizer=cmd.optimizer, backend=cmd.backend,
        fitness=cmd.fitness, **cmd.provider_settings)
    model = cmd.model or _server_model(cmd.provider, cmd.provider_settings)
    if model:
        kw["model"] = model
    if cmd.models:
        kw["models"] = list(cmd.models)
    try:  # the run fills in sections, hats and amendments; a placeholder section checks the rest
        EvolutionSettings(base_spec_hash="-", sections=["-"], **kw)
    except ValidationError as exc:
        errors = _settings_errors(exc)
        raise CommandRefused("; ".join(f"{k}: {v}" for k, v in errors.items()), errors) from None
    _preflight(cmd.backend)
    try:
        with app.writer() as store:
            rid = create_run(store, text, label=cmd.label or label, learn=cmd.learn, **kw)
    except ValueError as exc:
        field_name = "fitness" if str(exc).startswith("fitness") else "spec" if "spec" in str(exc) else None
        raise CommandRefused(str(exc), {field_name: str(exc)} if field_name else None) from None
    try:
        spawn_evolution(app.home, rid)
    except RuntimeError as exc:
        raise CommandRefused(f"run {rid} was stored but its process did not start: {exc}; "
                             f"`cambrian evolve resume {rid}` retries") from None
    return EvolutionStarted(rid, cmd.provider, provider(cmd.provider).simulated)


@handles(ControlEvolution)
def _control_evolution(app: "Cambrian", cmd: ControlEvolution) -> ControlDone:
    from core.evolution.runs import control_run

    try:
        msg = control_run(app.home, cmd.run_id, cmd.action)
    except KeyError as exc:
        raise CommandRefused(str(exc.args[0]) if exc.args else str(exc)) from None
    except (RuntimeError, ValueError) as exc:
        raise CommandRefused(str(exc)) from None
    return ControlDone(cmd.run_id, cmd.action, msg)


@handles(ExportBest)
def _export_best(app: "Cambrian", cmd: ExportBest) -> BestExported:
    from core.evolution.runs import best_with_metadata

    target = Path(cmd.target) if cmd.target else app.home / "exports"
    if cmd.target is None:
        target.mkdir(parents=True, exist_ok=True)
    try:
        with app.writer() as store:
            meta = best_with_metadata(store, cmd.run_id, target)
    except KeyError as exc:
        raise CommandRefused(str(exc.args[0]) if exc.args else str(exc)) from None
    except OSError as exc:
        raise CommandRefused(f"cannot export to {target}: {exc}") from None
    return BestExported(cmd.run_id, meta)


@handles(Distill)
def _distill(app: "Cambrian", cmd: Distill) -> Distilled:
    from core.distill import distill_campaign

    try:
        with app.writer() as store:
            report = distill_campaign(store, cmd.campaign_id)
    except KeyError as exc:
        raise CommandRefused(str(exc.args[0]) if exc.args else f"no campaign {cmd.campaign_id!r}") from None
    from core.distill.explain import headline

    return Distilled(cmd.campaign_id, len(report.analysed), len({t.feature for t in report.significant}),
                     len(report.amendments), tuple(f"{s.feature}: {s.reason}" for s in report.skipped),
                     report.to_json(), headline(report),
                     tuple(int(a.id) for a in report.amendments if a.id is not None))


@handles(AcceptAmendment)
def _accept(app: "Cambrian", cmd: AcceptAmendment) -> AmendmentDone:
    from core.distill.amend import AmendmentRefused, accept_amendment

    with app.writer() as store:
        try:
            version = accept_amendment(store, cmd.amendment_id, edited_text=cmd.text)
        except KeyError:
            raise CommandRefused(f"no amendment {cmd.amendment_id}") from None
        except AmendmentRefused as exc:
            raise CommandRefused(exc.reason) from None
        a = store.amendment(cmd.amendment_id)
        from core.distill.confirm import ConfirmRefused, confirmation_settings

        try:
            confirmation_settings(store, cmd.amendment_id)
            confirmable = True
        except (ConfirmRefused, KeyError, ValueError):
            confirmable = False
    return AmendmentDone(a.id or cmd.amendment_id, "accept", a.status.value, version.hash, a.spec_hash, a.text,
                         confirmable)


@handles(ConfirmAmendment)
def _confirm_amendment(app: "Cambrian", cmd: ConfirmAmendment) -> ConfirmationStarted:
    from core.distill.confirm import ConfirmRefused, confirmation_settings, start_confirmation

    with app.writer() as store:
        try:
            settings = confirmation_settings(store, cmd.amendment_id, cmd.generations)
            original = store.amendment(cmd.amendment_id).campaign_id or ""
        except KeyError:
            raise CommandRefused(f"no amendment {cmd.amendment_id}") from None
        except ConfirmRefused as exc:
            raise CommandRefused(str(exc)) from None
    _preflight(settings.get("backend") or "docker")
    try:
        cid = start_confirmation(app.home, cmd.amendment_id, cmd.generations)
    except ConfirmRefused as exc:
        raise CommandRefused(str(exc)) from None
    return ConfirmationStarted(cmd.amendment_id, cid, original, int(settings["generations"]))


@handles(RejectAmendment)
def _reject(app: "Cambrian", cmd: RejectAmendment) -> AmendmentDone:
    from core.distill.amend import AmendmentRefused, reject_amendment

    with app.writer() as store:
        try:
            a = reject_amendment(store, cmd.amendment_id)
        except KeyError:
            raise CommandRefused(f"no amendment {cmd.amendment_id}") from None
        except AmendmentRefused as exc:
            raise CommandRefused(exc.reason) from None
    return AmendmentDone(a.id or cmd.amendment_id, "reject", a.status.value)


@handles(DismissProbe)
def _dismiss_probe(app: "Cambrian", cmd: DismissProbe) -> ProbeDismissed:
    from core.examiner.service import DismissError, dismiss_probe

    with app.writer() as store:
        try:
            spec_hash = store.resolve_spec(cmd.spec)
            done = dismiss_probe(store, spec_hash, cmd.probe, cmd.reason, model=cmd.model)
        except KeyError as exc:
            raise CommandRefused(str(exc.args[0]) if exc.args else "unknown spec") from None
        except DismissError as exc:
            raise CommandRefused(str(exc)) from None
    return ProbeDismissed(spec_hash, cmd.probe, tuple(done))


@handles(ImportArtifacts)
def _import(app: "Cambrian", cmd: ImportArtifacts) -> dict[str, Any]:
    from core.engine.importer import ImportErrorReport, import_tree

    with app.writer() as store:
        try:
            return import_tree(store, cmd.directory)
        except ImportErrorReport as exc:
            raise CommandRefused(str(exc)) from None


@handles(Reverify)
def _reverify(app: "Cambrian", cmd: Reverify) -> list[dict[str, Any]]:
    from core.engine.reverify import reverify

    with app.writer() as store:
        try:
            return reverify(store, list(cmd.generations), backend=cmd.backend, rig_fn=cmd.rig_fn,
                            profile=cmd.profile, on_row=cmd.on_row)
        except (KeyError, ValueError) as exc:
            raise CommandRefused(str(exc.args[0]) if exc.args else str(exc)) from None


@handles(CheckConnection)
def _check_connection(app: "Cambrian", cmd: CheckConnection) -> ConnectionChecked:
    import asyncio

    from core.app.forms import model_refs
    from core.app.providers import SERVER_PROVIDERS
    from core.llm.endpoints import check_connection

    todo: list[tuple[str, str | None, str | None, int | None, str | None]] = []
    if cmd.provider in SERVER_PROVIDERS:
        todo.append((cmd.provider, cmd.base_url, cmd.model or None, cmd.context_window, cmd.api_key_env))
    try:
        refs = model_refs(list(cmd.models), provider=cmd.provider, base_url=cmd.base_url)
    except ValueError as exc:
        raise CommandRefused(str(exc), {"models": str(exc)}) from None
    for ref in refs:
        if ref.provider not in SERVER_PROVIDERS:
            continue
        own = ref.provider == cmd.provider
        same_server = own and ref.base_url == cmd.base_url
        item = (ref.provider, ref.base_url, ref.model, cmd.context_window if same_server else None,
                cmd.api_key_env if own else None)
        if all(t[:3] != item[:3] for t in todo):
            todo.append(item)
    if not todo:
        msg = f"provider {cmd.provider} talks to no model server: nothing to check"
        raise CommandRefused(msg, {"provider": msg})

    async def run_all() -> list[Any]:
        return await asyncio.gather(*(
            check_connection(p, url, api_key_env=key, model=model, context_window=window, home=str(app.home))
            for p, url, model, window, key in todo))

    return ConnectionChecked(tuple(asyncio.run(run_all())))


def _server_model(provider_name: str, settings: dict[str, Any]) -> str | None:
    """With no model given for an OpenAI-compatible server: the one it serves (llama.cpp
    serves exactly one); a server with several, or none reachable, is refused with what it
    offers or why it could not be asked."""
    if provider_name != "openai":
        return None
    from core.llm.endpoints import check_connection_sync

    rep = check_connection_sync(provider_name, settings.get("base_url"),
                                api_key_env=settings.get("api_key_env"))
    if rep.ok and rep.model:
        return rep.model
    if rep.ok:
        msg = f"a model is required: the server offers {', '.join(rep.models[:20]) or 'no models'}"
    else:
        msg = f"a model is required and the server could not be asked: {rep.error}"
    raise CommandRefused(msg, {"model": msg})


def refused_from_form(exc: FormErrors) -> CommandRefused:
    return CommandRefused(str(exc), exc.errors)
