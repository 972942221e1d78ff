"""New-campaign form: spec, provider, model, N, P, budgets, seed → a detached engine."""

from __future__ import annotations

from pathlib import Path

import os
from typing import Any, Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.validation import Integer, Number
from textual.widgets import Button, Input, Label, Select, Static

from cambrian_tui.data import DEFAULT_MODEL, SpecVersionInfo, short_hash
from cambrian_tui.messages import CampaignStarted, LoadFailed, SpecVersionsLoaded
from cambrian_tui.screens.base import CambrianModal


def default_provider() -> str:
    return "anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "sim"


def build_settings(values: dict[str, str], spec_hash: str) -> Any:
    """Form strings -> core.models.CampaignSettings (raises ValueError with a clear message)."""
    from pydantic import ValidationError

    from core.models import CampaignSettings

    def opt_int(key: str) -> int | None:
        v = values.get(key, "").strip()
        return int(v) if v else None

    def opt_float(key: str) -> float | None:
        v = values.get(key, "").strip().lstrip("$")
        return float(v) if v else None

    def int_or(key: str, default: int) -> int:
        v = opt_int(key)
        return default if v is None else v

    try:
        kwargs: dict[str, Any] = dict(
            spec_hash=spec_hash,
            generations=int_or("generations", 6),
            parallelism=int_or("parallelism", 1),
            provider=values.get("provider") or "sim",
            model=values.get("model", "").strip() or DEFAULT_MODEL.get(values.get("provider") or "sim", "sim-1"),
            seed=int_or("seed", 0),
            max_retries=int_or("max_retries", 1),
            budget_usd=opt_float("budget_usd"),
            budget_tokens=opt_int("budget_tokens"),
            budget_wall_s=opt_float("budget_wall_s"),
            backend=values.get("backend") or "docker",
        )
        return CampaignSettings(**kwargs)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()))
            msgs.append(f"{loc}: {err.get('msg')}")
        raise ValueError("; ".join(msgs)) from None
    except ValueError as exc:
        raise ValueError(f"not a number: {exc}") from None


def start_campaign(home, spec_text: str, settings: Any, label: str = "") -> str:
    """Start a detached engine (survives the TUI and the terminal); returns the campaign id."""
    from core.engine.launch import start_detached  # type: ignore[import-not-found]

    return start_detached(home, settings, spec_text, label=label)


class SpecForm(CambrianModal[str | None]):
    """What the start forms share: the spec choice (stored versions newest first, then the
    shipped genomes), the provider → default model link, the error line, start/cancel.
    Subclasses compose their fields (ids ``nc-<key>``) and implement ``launcher``."""

    CSS_PATH = str(Path(__file__).with_name("new_campaign.tcss"))
    INPUTS: tuple[str, ...] = ()
    SELECTS: tuple[str, ...] = ("provider", "backend")
    WHAT = "campaign"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start"),
    ]

    def __init__(self, default_spec: str | None = None, *, id: str) -> None:
        super().__init__(id=id)
        self.versions: list[SpecVersionInfo] = []
        self.default_spec = default_spec

    def spec_and_provider(self, prov: str) -> ComposeResult:
        yield Label("Spec")
        yield Select([], id="nc-spec", prompt="loading specs…", allow_blank=True, classes="wide")
        yield Label("Provider")
        yield Select([("sim (offline)", "sim"), ("anthropic", "anthropic"),
                      ("replay (cassette)", "replay")], id="nc-provider", value=prov, allow_blank=False)
        yield Label("Model")
        yield Input(DEFAULT_MODEL[prov], id="nc-model")

    def footer(self, hint: str) -> ComposeResult:
        yield Static("", id="nc-error")
        with Horizontal(id="nc-buttons"):
            yield Static(Content.from_markup(f"[dim]{hint}[/]"), id="nc-hint")
            yield Button("Cancel", id="nc-cancel")
            yield Button("Start", id="nc-start", variant="success")

    def on_mount(self) -> None:
        data = self.data
        self.background("specs", lambda: SpecVersionsLoaded(data.spec_versions()))
        self.query_one("#nc-spec", Select).focus()

    def on_spec_versions_loaded(self, message: SpecVersionsLoaded) -> None:
        stored = [v for v in message.versions if v.origin != "shipped"][::-1]
        shipped = sorted((v for v in message.versions if v.origin == "shipped"), key=lambda v: v.title)
        self.versions = stored + shipped
        sel = self.query_one("#nc-spec", Select)
        options = [(f"{v.title}  ({v.origin}, {short_hash(v.hash, 8)})", v.hash) for v in self.versions]
        sel.set_options(options)
        sel.prompt = "choose a spec" if options else "no specs: add one with `cambrian spec` or spec/*.md"
        if options:
            hashes = [h for _, h in options]
            sel.value = self.default_spec if self.default_spec in hashes else hashes[0]

    @on(Select.Changed, "#nc-provider")
    def _provider_changed(self, event: Select.Changed) -> None:
        model = self.query_one("#nc-model", Input)
        if model.value in DEFAULT_MODEL.values() or not model.value:
            model.value = DEFAULT_MODEL.get(str(event.value), "")

    @on(Button.Pressed, "#nc-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#nc-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def _values(self) -> dict[str, str]:
        out = {key: self.query_one(f"#nc-{key}", Input).value for key in ("model", *self.INPUTS)}
        for key in self.SELECTS:
            v = self.query_one(f"#nc-{key}", Select).value
            out[key] = "" if v is Select.BLANK else str(v)
        return out

    def _error(self, text: str) -> None:
        self.query_one("#nc-error", Static).update(Content.styled(text, "$text-error") if text else "")

    def action_start(self) -> None:
        spec_sel = self.query_one("#nc-spec", Select)
        if spec_sel.value is Select.BLANK:
            self._error("choose a spec first")
            return
        version = next((v for v in self.versions if v.hash == spec_sel.value), None)
        if version is None:
            self._error("unknown spec")
            return
        values = self._values()
        try:
            launch = self.launcher(values, version)
        except ValueError as exc:
            self._error(str(exc))
            return
        if values.get("provider") == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
            self._error("provider anthropic needs ANTHROPIC_API_KEY in the environment (use sim offline)")
            return
        self._error("")
        self.query_one("#nc-start", Button).disabled = True
        self.query_one("#nc-hint", Static).update(Content.from_markup("[$text-accent]starting…[/]"))
        self.background(f"start {self.WHAT}", launch)

    def launcher(self, values: dict[str, str], version: SpecVersionInfo) -> Callable[[], Message]:
        """Validate the form (ValueError with a clear message) and return the worker that
        starts the detached process and returns the message carrying the new id."""
        raise NotImplementedError

    def on_load_failed(self, message: LoadFailed) -> None:
        message.stop()
        err = message.error
        if isinstance(err, ImportError):
            text = f"the engine is not available: {err}"
        else:
            text = f"{message.what} failed: {err}"
        self._error(text)
        self.query_one("#nc-start", Button).disabled = False
        self.query_one("#nc-hint", Static).update("")

    def action_cancel(self) -> None:
        self.dismiss(None)


class NewCampaignScreen(SpecForm):
    HELP_TITLE = "New campaign"
    INPUTS = ("generations", "parallelism", "max_retries", "budget_usd", "budget_tokens", "budget_wall_s",
              "seed", "label")

    def __init__(self, default_spec: str | None = None) -> None:
        super().__init__(default_spec, id="new-campaign")

    def compose(self) -> ComposeResult:
        prov = default_provider()
        with Vertical(id="nc-box"):
            yield Label("New campaign", id="nc-title")
            with Grid(id="nc-grid"):
                yield from self.spec_and_provider(prov)
                yield from number_field("Generations N", "generations", "6", lo=1, hi=100_000)
                yield from number_field("Parallelism P", "parallelism", "1", lo=1, hi=64)
                yield from number_field("Retries / gen", "max_retries", "1", lo=0, hi=10)
                yield from number_field("Seed", "seed", "0")
                yield from number_field("Budget $", "budget_usd", kind="number", lo=0)
                yield from number_field("Budget tokens", "budget_tokens", lo=0)
                yield from number_field("Wall time (s)", "budget_wall_s", kind="number", lo=0)
                yield from backend_field()
                yield Label("Label")
                yield Input("", id="nc-label", placeholder="optional", classes="wide")
            yield from self.footer("ctrl+s start · escape cancel · the engine runs detached")

    def launcher(self, values: dict[str, str], version: SpecVersionInfo) -> Callable[[], Message]:
        settings = build_settings(values, version.hash)
        data, home = self.data, self.capp.home
        label = values.get("label", "").strip()

        def launch() -> Message:
            return CampaignStarted(start_campaign(home, data.spec_text(version), settings, label))

        return launch

    def on_campaign_started(self, message: CampaignStarted) -> None:
        message.stop()
        self.dismiss(message.campaign_id)


def number_field(label: str, key: str, value: str = "", *, kind: str = "integer", lo: float | None = None,
                 hi: float | None = None) -> ComposeResult:
    """A label and a validated number input ``#nc-<key>``; empty means "no cap"."""
    validator = (Integer if kind == "integer" else Number)(minimum=lo, maximum=hi)
    yield Label(label)
    yield Input(value, id=f"nc-{key}", type=kind, validators=[validator],
                placeholder="" if value else "no cap")


def backend_field() -> ComposeResult:
    yield Label("Rig backend")
    yield Select([("docker", "docker"), ("bwrap (weaker)", "bwrap"), ("none (trusted)", "none")],
                 id="nc-backend", value="docker", allow_blank=False)
