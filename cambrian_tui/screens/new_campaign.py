"""Start forms: a new campaign (here) and a new evolution run (``new_evolution``).

Built from data (``core.app.forms`` fields, ``core.app.providers`` providers), checked
strictly: a value that is not a number, out of range, or missing is refused *at its
field* (the field's border says why) and nothing starts; a refusal from the application
layer (the rig cannot judge, the spec fails its check) is shown in the form, never as a
toast. The spec chooser lists shipped genomes, stored versions (marked by origin) and
files of the spec folder that fail ``spec check`` (marked ✗, refused), and takes a typed
path instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from cambrian_tui.keys import bindings
from cambrian_tui.messages import CommandDone, CommandFailed
from cambrian_tui.screens.base import CambrianModal
from core.app.forms import BACKENDS, FORM, FieldSpec, FormErrors, campaign_fields, parse_form, parse_value
from core.app.models import CampaignView, SpecChoice
from core.app.providers import PROVIDERS, default_provider, provider


class SpecChoicesLoaded(Message):
    def __init__(self, choices: list[SpecChoice]) -> None:
        super().__init__()
        self.choices = choices


def field_id(key: str) -> str:
    return f"nc-{key}"


class SpecForm(CambrianModal[str | None]):
    """What the start forms share: the spec chooser, the provider with its default model
    and its own fields, strict number fields, errors at the fields, start / cancel.
    Subclasses give ``FIELDS`` (and extra widgets) and ``make_command``."""

    CSS_PATH = str(Path(__file__).with_name("new_campaign.tcss"))
    BINDINGS = bindings("form")
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (92, "-wide")]
    WHAT = "campaign"
    FIELDS: tuple[FieldSpec, ...] = ()
    SELECTS: tuple[str, ...] = ("provider", "backend")

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.choices: list[SpecChoice] = []
        self.errors: dict[str, str] = {}
        self._error_at: dict[str, Any] = {}

    # building ---------------------------------------------------------------------------------

    def spec_fields(self) -> ComposeResult:
        yield Label("Spec")
        # the chooser is made once the choices are known: it has no blank entry to land on
        yield Static(Content.from_markup("[dim]loading specs…[/]"), id="nc-spec-loading", classes="wide")
        yield Label("…or a file")
        yield Input("", id="nc-spec_path", placeholder="path to a spec file (used instead of the list)",
                    classes="wide")

    def provider_fields(self) -> ComposeResult:
        prov = default_provider()
        yield Label("Provider")
        yield Select([(p.label, p.name) for p in PROVIDERS.values() if self._offers(p)], id="nc-provider",
                     value=prov, allow_blank=False)
        yield Label("Model")
        yield Input(provider(prov).default_model, id="nc-model")
        for p in PROVIDERS.values():
            for f in p.fields:
                yield Label(f.label, classes=f"prov-field prov-{p.name}")
                yield Input(f.default, id=field_id(f.key), placeholder=f.placeholder,
                            classes=f"prov-field prov-{p.name}" + (" wide" if f.wide else ""))

    def _offers(self, p) -> bool:
        return True

    def number_fields(self) -> ComposeResult:
        for f in self.FIELDS:
            yield Label(f.label)
            yield Input(f.default, id=field_id(f.key), placeholder=f.placeholder or "",
                        tooltip=f.help or None, classes="wide" if f.wide else "")

    def backend_field(self) -> ComposeResult:
        yield Label("Rig backend")
        yield Select(list(BACKENDS), id="nc-backend", value="docker", allow_blank=False)

    def footer(self, hint: str) -> ComposeResult:
        yield Static("", id="nc-error")
        with Horizontal(id="nc-buttons"):
            yield Static(Content.from_markup(f"[dim]{hint}[/]"), id="nc-hint")
            yield Button("Cancel", id="nc-cancel")
            yield Button("Start", id="nc-start", variant="success")

    def on_mount(self) -> None:
        reads = self.reads
        self.background("specs", lambda: SpecChoicesLoaded(reads.spec_choices()))
        self._show_provider_fields(str(self.query_one("#nc-provider", Select).value))

    # the spec chooser -------------------------------------------------------------------------

    def default_choice(self, choices: list[SpecChoice]) -> SpecChoice | None:
        from core.app.specs import default_choice

        return default_choice(choices, None)

    def on_spec_choices_loaded(self, message: SpecChoicesLoaded) -> None:
        self.choices = message.choices
        placeholder = self.query_one("#nc-spec-loading", Static)
        if not self.choices:
            placeholder.update(Content.from_markup("[dim]no specs here: type a file path below[/]"))
            self.query_one("#nc-spec_path", Input).focus()
            return
        choice = self.default_choice(self.choices) or self.choices[0]
        sel = Select([(c.label, c.key) for c in self.choices], id="nc-spec", value=choice.key,
                     allow_blank=False, classes="wide")
        self.query_one("#nc-grid").mount(sel, before=placeholder)
        placeholder.remove()
        sel.focus()

    def chosen(self) -> SpecChoice | None:
        try:
            v = self.query_one("#nc-spec", Select).value
        except Exception:  # still loading, or no spec to choose
            return None
        return next((c for c in self.choices if c.key == v), None)

    @on(Select.Changed, "#nc-spec")
    def _spec_changed(self, event: Select.Changed) -> None:
        c = self.chosen()
        self._set_error("spec", c.problem if c is not None and c.problem else "")

    # the provider --------------------------------------------------------------------------------

    @on(Select.Changed, "#nc-provider")
    def _provider_changed(self, event: Select.Changed) -> None:
        name = str(event.value)
        model = self.query_one("#nc-model", Input)
        defaults = {p.default_model for p in PROVIDERS.values()}
        if model.value in defaults or not model.value.strip():
            model.value = provider(name).default_model
        self._show_provider_fields(name)
        self._set_error("provider", provider(name).problem() or "")

    def _show_provider_fields(self, name: str) -> None:
        for w in self.query(".prov-field"):
            w.display = w.has_class(f"prov-{name}")

    # fields and their errors -------------------------------------------------------------------

    def field_spec(self, key: str) -> FieldSpec | None:
        for f in self.FIELDS:
            if f.key == key:
                return f
        for p in PROVIDERS.values():
            for f in p.fields:
                if f.key == key:
                    return f
        return None

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("nc-")
        spec = self.field_spec(key)
        if spec is not None:
            try:
                parse_value(spec, event.value)
                self._set_error(key, "")
            except ValueError as exc:
                self._set_error(key, str(exc))
        elif key == "spec_path" and self.errors.get("spec"):
            self._set_error("spec", "")

    def _error_widget(self, key: str):
        """Where a field's message goes: an input's border, or a chooser's."""
        try:
            if key == "spec":
                if self.query_one("#nc-spec_path", Input).value.strip() or not self.choices:
                    return self.query_one("#nc-spec_path")
                return self.query_one("#nc-spec").query_one("SelectCurrent")
            if key in self.SELECTS:
                return self.query_one(f"#nc-{key}").query_one("SelectCurrent")
            return self.query_one(f"#{field_id(key)}")
        except Exception:  # FORM, or a field this form does not have
            return None

    def _set_error(self, key: str, text: str) -> None:
        """Say at the field what is wrong with it (its border), or clear it."""
        old = self._error_at.pop(key, None)
        if old is not None:
            old.remove_class("-error")
            old.border_subtitle = ""
        if text:
            self.errors[key] = text
            w = self._error_widget(key)
            if w is not None:
                w.add_class("-error")
                w.border_subtitle = text
                self._error_at[key] = w
        else:
            self.errors.pop(key, None)
        self._show_errors()

    def _show_errors(self) -> None:
        labels = {f.key: f.label for f in self.FIELDS}
        labels.update({"spec": "Spec", "provider": "Provider", "model": "Model", "models": "Model choices"})
        for p in PROVIDERS.values():
            labels.update({f.key: f.label for f in p.fields})
        parts = [f"{labels.get(k, k)}: {v}" if k != FORM else v for k, v in self.errors.items()]
        box = self.query_one("#nc-error", Static)
        box.update(Content.styled("; ".join(parts), "$text-error") if parts else "")

    def values(self) -> dict[str, str]:
        out = {w.id.removeprefix("nc-"): w.value for w in self.query(Input) if w.id and w.id.startswith("nc-")}
        for key in self.SELECTS:
            v = self.query_one(f"#nc-{key}", Select).value
            out[key] = "" if v is Select.BLANK else str(v)
        return out

    # starting ----------------------------------------------------------------------------------

    def spec_ref(self, values: dict[str, str]):
        """The spec to start from, or ValueError for the spec field."""
        from core.app.commands import SpecRef

        path = values.get("spec_path", "").strip()
        if path:
            return SpecRef(path=path)
        c = self.chosen()
        if c is None:
            raise ValueError("choose a spec, or type a file path")
        if c.problem:
            raise ValueError(f"{c.title} fails spec check: {c.problem}")
        return SpecRef(path=c.path) if c.kind == "shipped" else SpecRef(hash=c.hash)

    def collect(self) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """(numbers, provider settings, spec) or FormErrors naming every bad field."""
        values = self.values()
        errors: dict[str, str] = {}
        numbers: dict[str, Any] = {}
        try:
            numbers = parse_form(self.FIELDS, values)
        except FormErrors as exc:
            errors.update(exc.errors)
        prov = provider(values.get("provider") or default_provider())
        problem = prov.problem()
        if problem:
            errors["provider"] = problem
        extra: dict[str, Any] = {}
        try:
            extra = parse_form(prov.fields, values)
        except FormErrors as exc:
            errors.update(exc.errors)
        if not values.get("model", "").strip():
            errors["model"] = "required: a model name"
        spec = None
        try:
            spec = self.spec_ref(values)
        except ValueError as exc:
            errors["spec"] = str(exc)
        errors.update(self.check(numbers, values))
        if errors:
            raise FormErrors(errors)
        return numbers, {k: v for k, v in extra.items() if v is not None}, spec

    def check(self, numbers: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
        """Cross-field checks of a subclass (field -> message)."""
        return {}

    def action_start(self) -> None:
        for key in list(self.errors):
            self._set_error(key, "")
        try:
            numbers, extra, spec = self.collect()
        except FormErrors as exc:
            for key, msg in exc.errors.items():
                self._set_error(key, msg)
            first = next((k for k in exc.errors if k != FORM), None)
            if first is not None:
                self._go_to_field(first)
            return
        command = self.make_command(self.values(), numbers, extra, spec)
        self.query_one("#nc-start", Button).disabled = True
        self.query_one("#nc-hint", Static).update(Content.from_markup("[$text-accent]starting…[/]"))
        self.capp.starting += 1
        self.command(f"start {self.WHAT}", command)

    def _go_to_field(self, key: str) -> None:
        """Focus a field that needs a fix and scroll it into view (after the error line,
        which may have grown over it, is laid out)."""
        try:
            w = self.query_one("#nc-spec" if key == "spec" and self.choices and not self.values().get("spec_path")
                               else f"#{field_id(key)}")
        except Exception:
            return
        w.focus()
        self.call_after_refresh(w.scroll_visible, animate=False)

    def make_command(self, values: dict[str, str], numbers: dict[str, Any], extra: dict[str, Any], spec) -> Any:
        raise NotImplementedError

    def on_command_failed(self, message: CommandFailed) -> None:
        """A refusal belongs in the form (at its fields when it names them), not in a toast."""
        message.prevent_default()
        self.capp.starting = max(0, self.capp.starting - 1)
        for key, msg in message.errors.items():
            self._set_error(key if key == FORM or self.field_spec(key) or key in ("spec", "provider", "model")
                            else FORM, msg)
        self.query_one("#nc-start", Button).disabled = False
        self.query_one("#nc-hint", Static).update("")

    def on_command_done(self, message: CommandDone) -> None:
        self.capp.starting = max(0, self.capp.starting - 1)
        result = message.result
        self.dismiss(getattr(result, "campaign_id", None) or getattr(result, "run_id", None))

    @on(Button.Pressed, "#nc-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#nc-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)


class NewCampaignScreen(SpecForm):
    HELP_TITLE = "New campaign"
    FIELDS = campaign_fields()

    def __init__(self, campaign: CampaignView | None = None) -> None:
        super().__init__(id="new-campaign")
        self.campaign = campaign  # the selected one: its spec is the default, unless an evolution ran it

    def compose(self) -> ComposeResult:
        with Vertical(id="nc-box"):
            yield Label("New campaign", id="nc-title")
            with Grid(id="nc-grid"):
                yield from self.spec_fields()
                yield from self.provider_fields()
                yield from self.number_fields()
                yield from self.backend_field()
                yield Label("Label")
                yield Input("", id="nc-label", placeholder="optional", classes="wide")
            yield from self.footer(f"{self.capp.key_label('form.start')} start · "
                                   f"{self.capp.key_label('form.cancel')} cancel · the engine runs detached")

    def default_choice(self, choices: list[SpecChoice]) -> SpecChoice | None:
        from core.app.specs import default_choice

        return default_choice(choices, self.campaign)

    def make_command(self, values: dict[str, str], numbers: dict[str, Any], extra: dict[str, Any], spec) -> Any:
        from core.app.commands import StartCampaign

        return StartCampaign(spec=spec, provider=values["provider"], model=values["model"].strip(),
                             backend=values.get("backend") or "docker", label=values.get("label", "").strip(),
                             provider_settings=extra, **numbers)
