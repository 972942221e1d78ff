"""New-evolution form: spec, provider, models, budgets, campaign sizes → a detached run
(the same ``StartEvolution`` command as ``cambrian evolve start``). A generation budget too
small for the run's design (the base campaign plus one screening) is refused at its field."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import Input, Label, Select, Static

from cambrian_tui.screens.new_campaign import SpecForm
from core.app.forms import evolution_budget_problem, evolution_fields, parse_models
from core.app.models import SpecChoice

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
            with Grid(id="nc-grid"):
                yield from self.spec_fields()
                yield from self.provider_fields()
                yield Label("Model choices")
                yield Input("", id="nc-models", placeholder="M1,M2,… (sim: all 3)")
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

    def check(self, numbers: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        try:
            parse_models(values.get("models", ""))
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
