"""New-evolution form: spec, provider, models, budgets, campaign sizes → a detached run
(the same ``StartEvolution`` command as ``cambrian evolve start``). A generation budget too
small for the run's design (the base campaign plus one screening) is refused at its field."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import Input, Label, Select, Static

from cambrian_tui.screens.new_campaign import SpecForm
from core.app.forms import evolution_budget_problem, evolution_fields, model_refs, parse_models
from core.app.models import SpecChoice
from core.app.providers import SERVER_PROVIDERS

MODEL_CHOICES_HELP = ("the model dimension of the run, comma-separated; each [provider:]model[@base_url], "
                      "so one run can mix providers and servers")
OPTIMIZERS = (("Bayesian + history", "bo"), ("Bayesian, cold start", "bo-cold"), ("random search", "random"))


def optimizer_choice(choice: str) -> tuple[str, bool]:
    """The optimizer select -> (optimizer, learn): "bo-cold" is BO without the prior learned
    from the home's earlier runs (``--no-prior``)."""
    choice = choice or "bo"
    return ("bo" if choice == "bo-cold" else choice), choice == "bo"


class NewEvolutionScreen(SpecForm):
    HELP_TITLE = "New evolution run"
    WHAT = "evolution"
    FIELDS = evolution_fields()
    SELECTS = ("provider", "backend", "optimizer")

    def __init__(self, default_spec: str | None = None) -> None:
        super().__init__(id="new-evolution")
        self.default_spec = default_spec

    def compose(self) -> ComposeResult:
        from core.evolution.settings import EvolutionSettings

        accept_p = EvolutionSettings.model_fields["accept_probability"].default
        with Vertical(id="nc-box"):
            yield Label("New evolution run", id="nc-title")
            with Grid(id="nc-grid", classes="nc-grid"):
                yield from self.spec_fields()
                yield from self.provider_fields()
                yield Label("Model choices")
                yield Input("", id="nc-models", classes="wide", tooltip=MODEL_CHOICES_HELP,
                            placeholder="M1,M2,… or openai:MODEL@http://host:11434/v1 (sim: all 3)")
            yield from self.connection_row()
            with Grid(id="nc-numbers", classes="nc-grid"):
                yield from self.number_fields()
                yield Label("Optimizer")
                yield Select(list(OPTIMIZERS), id="nc-optimizer", value="bo", allow_blank=False)
                yield from self.backend_field()
            # the acceptance rule decides how big the campaigns should be: say it where they are set;
            # "history" needs a word too
            yield Static(Content.from_markup(
                f"[dim]A variant replaces the incumbent only when P(better) ≥ {accept_p:.2f} over its full "
                "campaign (Full gens): more full generations resolve smaller gains, at a higher cost. "
                "Bayesian + history starts from what earlier runs in this home learned about rewrites "
                "and does not re-screen hats or models that never paid there.[/]"),
                id="nc-note")
            yield from self.footer(f"{self.capp.key_label('form.start')} start · "
                                   f"{self.capp.key_label('form.cancel')} cancel · runs on after you quit")

    def _offers(self, p) -> bool:
        return p.evolution

    def default_choice(self, choices: list[SpecChoice]) -> SpecChoice | None:
        hit = next((c for c in choices if c.usable and c.hash == self.default_spec), None)
        return hit or super().default_choice(choices)

    def model_choices(self, values: dict[str, str], settings: dict[str, Any]) -> tuple[str, ...]:
        return tuple(parse_models(values.get("models", ""), provider=values.get("provider") or "sim",
                                  base_url=settings.get("base_url")))

    def servers_named(self) -> bool:
        """The run's provider, or any model choice naming a server's provider."""
        if super().servers_named():
            return True
        try:
            refs = model_refs(parse_models(self.query_one("#nc-models", Input).value),
                              provider=self.provider_name)
        except ValueError:
            return False
        return any(r.provider in SERVER_PROVIDERS for r in refs)

    @on(Input.Changed, "#nc-models")
    def _models_changed(self, event: Input.Changed) -> None:
        url = self._provider_value("base_url").strip() or None
        try:
            parse_models(event.value, provider=self.provider_name, base_url=url)
            self._set_error("models", "")
        except ValueError as exc:
            self._set_error("models", str(exc))
        self.query_one("#nc-conn").display = self.servers_named()

    def check(self, numbers: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        try:
            self.model_choices(values, {})
        except ValueError as exc:
            errors["models"] = str(exc)
        keys = ("budget_generations", "screen_generations", "full_generations")
        if all(numbers.get(k) is not None for k in keys):
            problem = evolution_budget_problem(*(int(numbers[k]) for k in keys))
            if problem:
                errors["budget_generations"] = problem
        return errors

    def make_command(self, values: dict[str, str], numbers: dict[str, Any], extra: dict[str, Any], spec) -> Any:
        from core.app.commands import StartEvolution

        optimizer, learn = optimizer_choice(values.get("optimizer", ""))
        return StartEvolution(
            spec=spec, provider=values["provider"], model=values["model"].strip() or None,
            models=tuple(parse_models(values.get("models", ""))), optimizer=optimizer, learn=learn,
            backend=values.get("backend") or "docker", provider_settings=extra, **numbers)
