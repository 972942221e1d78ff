"""Start forms: a new campaign (here) and a new evolution run (``new_evolution``).

Built from data (``core.app.forms`` fields, ``core.app.providers`` providers), checked
strictly: a value that is not a number, out of range, or missing is refused *at its
field* (the field's border says why) and nothing starts; a refusal from the application
layer (the rig cannot judge, the spec fails its check) is shown in the form, never as a
toast. The spec chooser lists shipped genomes, stored versions (marked by origin) and
files of the spec folder that fail ``spec check`` (marked ✗, refused), and takes a typed
path instead.

Model servers (the ``openai`` provider, ``anthropic`` with a base URL): each provider shows
its own fields (base URL, key variable, context window, continuation), a preset fills them
for Ollama, vLLM, llama.cpp's server, LM Studio or the OpenAI API, and "Test connection"
runs the ``CheckConnection`` command in a worker and shows, at the form, the server's
models, the context window it reports and how its calls will be priced — or what failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.markup import escape
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from cambrian_tui.keys import bindings
from cambrian_tui.messages import CommandDone, CommandFailed, ConnectionTested
from cambrian_tui.screens.base import CambrianModal
from core.app.forms import (BACKENDS, EXAMINER_CHOICES, FORM, REDTEAM_CHOICES, REPRODUCTION_CHOICES,
                            SEALED_CHOICES, FieldSpec, FormErrors, campaign_fields, parse_form, parse_value)
from core.app.models import CampaignView, SpecChoice
from core.app.providers import PROVIDERS, SERVER_PROVIDERS, ServerPreset, default_provider, provider, server_presets


class ConnectionResult(Static):
    """What "Test connection" found; scrolled into the form's view when a report arrives
    (a short terminal would leave it under the footer)."""

    reveal = False

    def scroll_into_box(self) -> None:
        for box in self.ancestors:
            if getattr(box, "id", None) == "nc-box":
                box.scroll_to_widget(self, animate=False)  # type: ignore[attr-defined]
                return

    def on_resize(self, event: events.Resize) -> None:
        if self.reveal:
            self.reveal = False
            self.call_after_refresh(self.scroll_into_box)


class SpecChoicesLoaded(Message):
    def __init__(self, choices: list[SpecChoice]) -> None:
        super().__init__()
        self.choices = choices


def field_id(key: str) -> str:
    return f"nc-{key}"


def provider_field_id(name: str, key: str) -> str:
    """A provider's own field: two providers may both have a base URL, each its own widget."""
    return f"nc-{name}-{key}"


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
        self.presets: tuple[ServerPreset, ...] = server_presets()
        self.connection: Any = None  # the last ConnectionChecked shown
        self.specs_loaded = False
        self._default_key: str | None = None  # the chooser's first value, until it is mounted
        self._start_when_loaded = False  # ctrl+s came before the spec list did

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
        yield Input(provider(prov).default_model or "", id="nc-model", placeholder="the server's only model")
        servers = " ".join(f"prov-{n}" for n in SERVER_PROVIDERS)
        yield Label("Preset", classes=f"prov-field {servers}")
        yield Select([(p.label, p.name) for p in self.presets], id="nc-preset", allow_blank=True,
                     prompt="custom server (or choose one to fill the fields)", classes=f"prov-field wide {servers}")
        for p in PROVIDERS.values():
            for f in p.fields:
                classes = f"prov-field prov-{p.name}" + (" wide" if f.wide else "")
                yield Label(f.label, classes=f"prov-field prov-{p.name}")
                if f.kind == "choice":
                    yield Select([(label, v) for label, v in f.choices if v], id=provider_field_id(p.name, f.key),
                                 allow_blank=True, prompt=next((lb for lb, v in f.choices if not v), "default"),
                                 tooltip=f.help or None, classes=classes)
                else:
                    yield Input(f.default, id=provider_field_id(p.name, f.key), placeholder=f.placeholder,
                                tooltip=f.help or None, classes=classes)

    def connection_row(self) -> ComposeResult:
        """"Test connection" and what it found, below the provider's fields."""
        with Horizontal(id="nc-conn"):
            yield Button("Test connection", id="nc-test", tooltip="reach the server: models, window, price")
            yield ConnectionResult("", id="nc-conn-result")

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
        self._show_provider_fields(self.provider_name)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Keep the focused field out from under the docked footer (verdict and buttons).
        Textual scrolls a focused widget only when the box cannot show it whole, and a field
        behind the footer is "shown"; the box's own scroll_to_widget knows the dock gutter."""
        w = event.widget
        if any(a.styles.dock != "none" for a in (w, *w.ancestors) if a is not self):
            return  # a footer button: always in view
        box = self.query_one("#nc-box")
        self.call_after_refresh(lambda: box.scroll_to_widget(w, animate=False) if w.has_focus else None)

    # the spec chooser -------------------------------------------------------------------------

    def default_choice(self, choices: list[SpecChoice]) -> SpecChoice | None:
        from core.app.specs import default_choice

        return default_choice(choices, None)

    def on_spec_choices_loaded(self, message: SpecChoicesLoaded) -> None:
        self.choices = message.choices
        self.specs_loaded = True
        placeholder = self.query_one("#nc-spec-loading", Static)
        if not self.choices:
            placeholder.update(Content.from_markup("[dim]no specs here: type a file path below[/]"))
            self.query_one("#nc-spec_path", Input).focus()
        else:
            choice = self.default_choice(self.choices) or self.choices[0]
            self._default_key = choice.key
            sel = Select([(c.label, c.key) for c in self.choices], id="nc-spec", value=choice.key,
                         allow_blank=False, classes="wide")
            self.query_one("#nc-grid").mount(sel, before=placeholder)
            placeholder.remove()
            sel.focus()
        if self._start_when_loaded:
            self._start_when_loaded = False
            self.call_after_refresh(self.action_start)

    def chosen(self) -> SpecChoice | None:
        try:
            v = self.query_one("#nc-spec", Select).value
        except Exception:  # still loading or being mounted, or no spec to choose
            v = self._default_key
        keys = {c.key for c in self.choices}
        if v not in keys:  # a chooser being mounted has no value yet
            v = self._default_key
        return next((c for c in self.choices if c.key == v), None)

    @on(Select.Changed, "#nc-spec")
    def _spec_changed(self, event: Select.Changed) -> None:
        c = self.chosen()
        self._set_error("spec", c.problem if c is not None and c.problem else "")

    # the provider --------------------------------------------------------------------------------

    @property
    def provider_name(self) -> str:
        return str(self.query_one("#nc-provider", Select).value)

    @on(Select.Changed, "#nc-provider")
    def _provider_changed(self, event: Select.Changed) -> None:
        name = str(event.value)
        model = self.query_one("#nc-model", Input)
        defaults = {p.default_model or "" for p in PROVIDERS.values()}
        if model.value in defaults or not model.value.strip():
            model.value = provider(name).default_model or ""
        preset = self._preset()
        if preset is not None and preset.provider != name:
            self.query_one("#nc-preset", Select).clear()
        for key in [k for k in self.errors if self._is_provider_field(k)]:
            self._set_error(key, "")  # the old provider's fields are hidden now
        self._show_provider_fields(name)
        self._check_provider()
        self._show_connection(None)

    def _show_provider_fields(self, name: str) -> None:
        for w in self.query(".prov-field"):
            w.display = w.has_class(f"prov-{name}")
        self.query_one("#nc-conn").display = bool(self.servers_named())

    def servers_named(self) -> bool:
        """Whether the form names a model server to test (subclasses add model choices)."""
        return self.provider_name in SERVER_PROVIDERS

    def _check_provider(self) -> None:
        """The provider's own problem (a key it needs), given the base URL typed so far."""
        info = provider(self.provider_name)
        url = self._provider_value("base_url").strip()
        self._set_error("provider", info.problem(settings={"base_url": url}) or "")

    def _provider_value(self, key: str) -> str:
        try:
            w = self.query_one(f"#{provider_field_id(self.provider_name, key)}")
        except Exception:  # this provider has no such field
            return ""
        v = w.value
        return "" if v is Select.NULL else str(v or "")  # NULL: a chooser left at its prompt

    def _is_provider_field(self, key: str) -> bool:
        return any(f.key == key for p in PROVIDERS.values() for f in p.fields) and \
            not any(f.key == key for f in self.FIELDS)

    # presets --------------------------------------------------------------------------------------

    def _preset(self) -> ServerPreset | None:
        v = self.query_one("#nc-preset", Select).value
        return next((p for p in self.presets if p.name == v), None)

    @on(Select.Changed, "#nc-preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        preset = self._preset()
        if preset is None:
            return
        if self.provider_name != preset.provider:
            self.query_one("#nc-provider", Select).value = preset.provider
            self._show_provider_fields(preset.provider)
        for f in provider(preset.provider).fields:
            w = self.query_one(f"#{provider_field_id(preset.provider, f.key)}")
            value = preset.values.get(f.key)
            if value is None:
                continue
            if isinstance(w, Select):
                if value:
                    w.value = value
                else:
                    w.clear()
            else:
                w.value = value
        self._show_connection(None)

    # the connection check ---------------------------------------------------------------------------

    def connection_command(self) -> Any:
        """The CheckConnection the form describes, or FormErrors for the fields it needs."""
        from core.app.commands import CheckConnection

        values = self.values()
        prov = provider(values.get("provider") or default_provider())
        errors: dict[str, str] = {}
        settings: dict[str, Any] = {}
        try:
            settings = parse_form(prov.fields, values)
        except FormErrors as exc:
            errors.update(exc.errors)
        models: tuple[str, ...] = ()
        try:
            models = self.model_choices(values, settings)
        except ValueError as exc:
            errors["models"] = str(exc)
        if errors:
            raise FormErrors(errors)
        return CheckConnection(
            provider=prov.name, base_url=settings.get("base_url"), api_key_env=settings.get("api_key_env"),
            model=values.get("model", "").strip() or None, context_window=settings.get("context_window"),
            models=models)

    def model_choices(self, values: dict[str, str], settings: dict[str, Any]) -> tuple[str, ...]:
        """An evolution run's model choices (the campaign form has none)."""
        return ()

    def action_test_connection(self) -> None:
        for key in [k for k in self.errors if k == "models" or self._is_provider_field(k)]:
            self._set_error(key, "")
        try:
            cmd = self.connection_command()
        except FormErrors as exc:
            for key, msg in exc.errors.items():
                self._set_error(key, msg)
            first = next((k for k in exc.errors if k != FORM), None)
            if first is not None:
                self._go_to_field(first)
            return
        where = cmd.base_url or "the provider's default server"
        self.query_one("#nc-conn").display = True
        self._conn_text(Content.from_markup(f"[$text-accent]testing {escape(where)}…[/]"))
        cam = self.cam

        def run() -> ConnectionTested:
            from core.app.commands import CommandRefused

            try:
                return ConnectionTested(cam.run(cmd))
            except CommandRefused as exc:
                return ConnectionTested(None, exc.reason, exc.errors)

        self.background("connection", run, group="connection")

    @on(Button.Pressed, "#nc-test")
    def _test_pressed(self) -> None:
        self.action_test_connection()

    def on_connection_tested(self, message: ConnectionTested) -> None:
        if message.result is None:
            self._conn_text(Content.styled(message.reason, "$text-error"))
            self._reveal_result()
            return
        self._show_connection(message.result)
        self._reveal_result()
        model = self.query_one("#nc-model", Input)
        first = message.result.reports[0] if message.result.reports else None
        if first is not None and first.ok and first.model and not model.value.strip() \
                and first.provider == self.provider_name:
            model.value = first.model  # the server's only model: say which one will be used

    def _reveal_result(self) -> None:
        """Scroll the report into view: now, and again once it is laid out at its new height."""
        result = self.query_one("#nc-conn-result", ConnectionResult)
        result.reveal = True
        self.call_after_refresh(result.scroll_into_box)

    def _show_connection(self, result: Any) -> None:
        """A check's reports, or (None) the chosen preset's notes / how to test."""
        self.connection = result
        if result is None:
            preset = self._preset()
            key = self.capp.key_label("form.test_connection")
            hint = f"{key} or the button: the server's models, context window and price"
            text = f"{preset.notes}\n{hint}" if preset is not None else hint
            self._conn_text(Content.styled(text, "$text-muted"))
            return
        parts = []
        for rep in result.reports:
            lines = rep.lines()
            style = "$text-success" if rep.ok else "$text-error"
            head = Content.styled(("✓ " if rep.ok else "✗ ") + lines[0], f"bold {style}")
            parts.append(Content("\n").join([head, *(Content(line) for line in lines[1:])]))
        self._conn_text(Content("\n").join(parts))

    def _conn_text(self, content: Content) -> None:
        self.query_one("#nc-conn-result", Static).update(content)

    # fields and their errors -------------------------------------------------------------------

    def field_spec(self, key: str) -> FieldSpec | None:
        """A field of the form: its own numbers, then the chosen provider's."""
        for f in self.FIELDS:
            if f.key == key:
                return f
        for f in provider(self.provider_name).fields:
            if f.key == key:
                return f
        return None

    def _key_of(self, widget_id: str) -> str | None:
        """The field key of a widget id; None for another provider's field."""
        key = widget_id.removeprefix("nc-")
        for p in PROVIDERS.values():
            if key.startswith(p.name + "-"):
                return key.removeprefix(p.name + "-") if p.name == self.provider_name else None
        return key

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        key = self._key_of(event.input.id or "")
        if key is None:
            return
        spec = self.field_spec(key)
        if spec is not None:
            try:
                parse_value(spec, event.value)
                self._set_error(key, "")
            except ValueError as exc:
                self._set_error(key, str(exc))
            if key == "base_url":
                self._check_provider()
                preset = self._preset()
                if preset is not None and preset.values.get("base_url") != event.value.strip():
                    self.query_one("#nc-preset", Select).clear()  # a server of one's own now
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
            return self._field_widget(key)
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

    def _field_widget(self, key: str):
        """The widget of a field key: the chosen provider's own, else the form's."""
        if self._is_provider_field(key):
            w = self.query_one(f"#{provider_field_id(self.provider_name, key)}")
            return w.query_one("SelectCurrent") if isinstance(w, Select) else w
        return self.query_one(f"#{field_id(key)}")

    def _show_errors(self) -> None:
        labels = {f.key: f.label for f in self.FIELDS}
        labels.update({"spec": "Spec", "provider": "Provider", "model": "Model", "models": "Model choices",
                       "backend": "Rig backend", **{c[0]: c[1] for c in POLICY_CHOOSERS}})
        labels.update({f.key: f.label for f in provider(self.provider_name).fields})
        parts = [f"{labels.get(k, k)}: {v}" if k != FORM else v for k, v in self.errors.items()]
        box = self.query_one("#nc-error", Static)
        box.update(Content.styled("; ".join(parts), "$text-error") if parts else "")

    def values(self) -> dict[str, str]:
        """Field key -> typed text: the form's own fields and the chosen provider's."""
        out = {w.id.removeprefix("nc-"): w.value for w in self.query(Input)
               if w.id and w.id.startswith("nc-") and not w.has_class("prov-field")}
        for key in self.SELECTS:
            v = self.query_one(f"#nc-{key}", Select).value
            out[key] = "" if v is Select.NULL else str(v)
        for f in provider(out.get("provider") or default_provider()).fields:
            out[f.key] = self._provider_value(f.key)
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
        extra: dict[str, Any] = {}
        try:
            extra = parse_form(prov.fields, values)
        except FormErrors as exc:
            errors.update(exc.errors)
        problem = prov.problem(settings={"base_url": values.get("base_url", "").strip()})
        if problem:
            errors["provider"] = problem
        if not values.get("model", "").strip() and prov.default_model is not None:
            errors["model"] = "required: a model name"  # an openai server's only model is found by the start
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
        if not self.specs_loaded and not self.values().get("spec_path", "").strip():
            # a quick ctrl+s: start with the default spec once the list is there
            self._start_when_loaded = True
            self.query_one("#nc-hint", Static).update(Content.from_markup("[$text-accent]starting…[/]"))
            return
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
            if key == "spec" and self.choices and not self.values().get("spec_path"):
                w = self.query_one("#nc-spec")
            elif self._is_provider_field(key):
                w = self.query_one(f"#{provider_field_id(self.provider_name, key)}")
            else:
                w = self.query_one(f"#{field_id(key)}")
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
            self._set_error(key if key == FORM or self.field_spec(key) or key in self.SELECTS
                            or key in ("spec", "provider", "model", "models") else FORM, msg)
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


# The campaign's verification policy: (form key, label, choices, default, tooltip).
POLICY_CHOOSERS = (
    ("reproduction", "Reproduction", REPRODUCTION_CHOICES, "off",
     "ask promoted offspring to breed through the LLM gateway (the spec must declare `reproduce`; "
     "docker backend)"),
    ("sealed", "Sealed vectors", SEALED_CHOICES, "gate", "the spec's sealed-vectors block, never shown to the writer"),
    ("examiner", "Examiner", EXAMINER_CHOICES, "score",
     "Layer 2: probes written once per spec version by a call that sees only the spec (docs/examiner.md)"),
    ("redteam", "Red team", REDTEAM_CHOICES, "off",
     "Layer 3: an LLM reads a viable artifact's code and the spec and proposes probes to break it; one "
     "call and one rig run each (docs/redteam.md)"),
)


class NewCampaignScreen(SpecForm):
    HELP_TITLE = "New campaign"
    FIELDS = campaign_fields()
    SELECTS = ("provider", "backend", *(c[0] for c in POLICY_CHOOSERS))

    def __init__(self, campaign: CampaignView | None = None) -> None:
        super().__init__(id="new-campaign")
        self.campaign = campaign  # the selected one: its spec is the default, unless an evolution ran it

    def compose(self) -> ComposeResult:
        with Vertical(id="nc-box"):
            yield Label("New campaign", id="nc-title")
            with Grid(id="nc-grid", classes="nc-grid"):
                yield from self.spec_fields()
                yield from self.provider_fields()
            yield from self.connection_row()
            with Grid(id="nc-numbers", classes="nc-grid"):
                yield from self.number_fields()
                yield from self.backend_field()
                for key, label, choices, default, tip in POLICY_CHOOSERS:
                    yield Label(label)
                    yield Select(list(choices), id=f"nc-{key}", value=default, allow_blank=False, tooltip=tip)
                yield Label("Label")
                yield Input("", id="nc-label", placeholder="optional", classes="wide")
            yield from self.footer(f"{self.capp.key_label('form.start')} start · "
                                   f"{self.capp.key_label('form.cancel')} cancel · the engine runs detached")

    def default_choice(self, choices: list[SpecChoice]) -> SpecChoice | None:
        from core.app.specs import default_choice

        return default_choice(choices, self.campaign)

    def make_command(self, values: dict[str, str], numbers: dict[str, Any], extra: dict[str, Any], spec) -> Any:
        from core.app.commands import StartCampaign

        return StartCampaign(spec=spec, provider=values["provider"], model=values["model"].strip() or None,
                             backend=values.get("backend") or "docker", label=values.get("label", "").strip(),
                             reproduction=values.get("reproduction") or "off",
                             sealed_vectors=values.get("sealed") or "gate",
                             examiner=values.get("examiner") or "score", redteam=values.get("redteam") or "off",
                             provider_settings=extra, **numbers)
