"""New-evolution form: spec, provider, models, budgets, campaign sizes → a detached run
(the same ``start_run`` as ``cambrian evolve start``)."""

from __future__ import annotations

from typing import Any, Callable

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from cambrian_tui.data import SpecVersionInfo
from cambrian_tui.screens.new_campaign import SpecForm, backend_field, default_provider, number_field
from core.evolution.settings import EvolutionSettings

ACCEPT_P = EvolutionSettings.model_fields["accept_probability"].default


class EvolutionStarted(Message):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


def build_run_settings(values: dict[str, str]) -> dict[str, Any]:
    """Form strings -> ``create_run`` keyword arguments, checked by the settings model itself
    (raises ValueError with a clear message; nothing is stored)."""
    from pydantic import ValidationError

    from core.evolution.settings import EvolutionSettings

    def number(key: str, kind: type, default: Any = None) -> Any:
        v = values.get(key, "").strip().lstrip("$")
        if not v:
            return default
        try:
            return kind(v)
        except ValueError:
            raise ValueError(f"{key.replace('_', ' ')}: not a number: {v!r}") from None

    provider = values.get("provider") or "sim"
    kw: dict[str, Any] = dict(
        provider=provider,
        seed=number("seed", int, 0),
        budget_generations=number("budget_generations", int, 160),
        budget_usd=number("budget_usd", float),
        screen_generations=number("screen_generations", int, 4),
        full_generations=number("full_generations", int, 12),
        parallelism=number("parallelism", int, 2),
        max_observations=number("max_observations", int),
        backend=values.get("backend") or "docker",
    )
    # "bo-cold": BO without the prior learned from the home's earlier runs (--no-prior)
    optimizer = values.get("optimizer") or "bo"
    kw["optimizer"] = "bo" if optimizer == "bo-cold" else optimizer
    if values.get("model", "").strip():
        kw["model"] = values["model"].strip()
    models = [m.strip() for m in values.get("models", "").split(",") if m.strip()]
    if models:
        kw["models"] = models
    try:  # the run fills in sections, hats and amendments; a placeholder section checks the rest
        EvolutionSettings(base_spec_hash="-", sections=["-"], **kw)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}"
                                   for e in exc.errors())) from None
    kw["learn"] = optimizer == "bo"
    return kw


class NewEvolutionScreen(SpecForm):
    HELP_TITLE = "New evolution run"
    WHAT = "evolution"
    INPUTS = ("models", "budget_generations", "budget_usd", "screen_generations", "full_generations",
              "parallelism", "seed", "max_observations")
    SELECTS = ("provider", "backend", "optimizer")

    def __init__(self, default_spec: str | None = None) -> None:
        super().__init__(default_spec, id="new-evolution")

    def compose(self) -> ComposeResult:
        prov = default_provider()
        with Vertical(id="nc-box"):
            yield Label("New evolution run", id="nc-title")
            with Grid(id="nc-grid"):
                yield from self.spec_and_provider(prov)
                yield Label("Model choices")
                yield Input("", id="nc-models", placeholder="M1,M2,… (sim: all 3)")
                yield from number_field("Budget gens", "budget_generations", "160", lo=1, hi=1_000_000)
                yield from number_field("Budget $", "budget_usd", kind="number", lo=0)
                yield from number_field("Screen gens", "screen_generations", "4", lo=1, hi=1000)
                yield from number_field("Full gens", "full_generations", "12", lo=1, hi=1000)
                yield from number_field("Parallelism P", "parallelism", "2", lo=1, hi=64)
                yield from number_field("Seed", "seed", "0")
                yield from number_field("Observations", "max_observations", lo=1)
                yield Label("Optimizer")
                yield Select([("Bayesian + history", "bo"), ("Bayesian, cold start", "bo-cold"),
                              ("random search", "random")], id="nc-optimizer", value="bo", allow_blank=False)
                yield from backend_field()
            # the acceptance rule decides how big the campaigns should be: say it where they are set;
            # "history" needs a word too
            yield Static(Content.from_markup(
                f"[dim]A variant replaces the incumbent only when P(better) ≥ {ACCEPT_P:.2f} over its full "
                "campaign (Full gens): more full generations resolve smaller gains, at a higher cost. "
                "Bayesian + history starts from what earlier runs in this home learned about rewrites "
                "and does not re-screen hats or models that never paid there.[/]"),
                id="nc-note")
            yield from self.footer("ctrl+s start · escape cancel · runs on after you quit")

    def launcher(self, values: dict[str, str], version: SpecVersionInfo) -> Callable[[], Message]:
        kw = build_run_settings(values)
        data, home = self.data, self.capp.home

        def launch() -> Message:
            from core.evolution.cli import start_run

            return EvolutionStarted(start_run(home, data.spec_text(version), label=version.title, **kw))

        return launch

    def on_evolution_started(self, message: EvolutionStarted) -> None:
        message.stop()
        self.dismiss(message.run_id)
