"""New-evolution form: spec, provider, models, budgets, campaign sizes → a detached run
(the same ``start_run`` as ``cambrian evolve start``)."""

from __future__ import annotations

from typing import Any, Callable

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.validation import Integer, Number
from textual.widgets import Input, Label, Select

from cambrian_tui.data import SpecVersionInfo
from cambrian_tui.screens.new_campaign import SpecForm, backend_field, default_provider


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
        budget_generations=number("budget_generations", int, 60),
        budget_usd=number("budget_usd", float),
        screen_generations=number("screen_generations", int, 4),
        full_generations=number("full_generations", int, 12),
        parallelism=number("parallelism", int, 2),
        max_observations=number("max_observations", int),
        backend=values.get("backend") or "docker",
        optimizer=values.get("optimizer") or "bo",
    )
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
                yield Label("Budget gens")
                yield Input("60", id="nc-budget_generations", type="integer", validators=[Integer(1, 1_000_000)])
                yield Label("Budget $")
                yield Input("", id="nc-budget_usd", placeholder="no cap", type="number",
                            validators=[Number(minimum=0)])
                yield Label("Screen gens")
                yield Input("4", id="nc-screen_generations", type="integer", validators=[Integer(1, 1000)])
                yield Label("Full gens")
                yield Input("12", id="nc-full_generations", type="integer", validators=[Integer(1, 1000)])
                yield Label("Parallelism P")
                yield Input("2", id="nc-parallelism", type="integer", validators=[Integer(1, 64)])
                yield Label("Seed")
                yield Input("0", id="nc-seed", type="integer", validators=[Integer()])
                yield Label("Observations")
                yield Input("", id="nc-max_observations", placeholder="no cap", type="integer",
                            validators=[Integer(minimum=1)])
                yield Label("Optimizer")
                yield Select([("Bayesian (GP)", "bo"), ("random search", "random")], id="nc-optimizer",
                             value="bo", allow_blank=False)
                yield from backend_field()
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
