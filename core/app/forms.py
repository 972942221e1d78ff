"""What the start forms ask, as data: fields, how a typed string becomes a value, and the
checks a request must pass before anything is stored or spawned.

The TUI builds its forms from these specs and the command line uses the same defaults, so
a typed ``2x`` is refused at the field ("not a whole number") instead of becoming ``2``,
and an empty required field is an error, not a silent default. Ranges come from the core
settings models (``CampaignSettings``, ``EvolutionSettings``): nothing is redeclared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

FORM = ""  # the key of errors that belong to the whole form, not one field


class FormErrors(ValueError):
    """Field key -> message (``FORM`` for the form as a whole). Nothing was stored."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    kind: str = "int"  # int | float | money | text | choice | path | url
    required: bool = True
    default: str = ""
    lo: float | None = None
    hi: float | None = None
    placeholder: str = ""
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (label, value) for kind "choice"
    wide: bool = False  # takes a whole form row

    @property
    def words(self) -> str:
        return self.label.lower()


def _bounds(model: Any, name: str) -> tuple[float | None, float | None]:
    """(lo, hi) from a pydantic field's ge/gt/le/lt constraints."""
    lo = hi = None
    for m in model.model_fields[name].metadata:
        for attr, side in (("ge", "lo"), ("gt", "lo"), ("le", "hi"), ("lt", "hi")):
            v = getattr(m, attr, None)
            if v is not None:
                if side == "lo":
                    lo = v
                else:
                    hi = v
    return lo, hi


def _range_text(spec: FieldSpec) -> str:
    fmt = (lambda v: f"{v:g}")
    if spec.lo is not None and spec.hi is not None:
        return f"{fmt(spec.lo)}–{fmt(spec.hi)}"
    if spec.lo is not None:
        return f"≥ {fmt(spec.lo)}"
    if spec.hi is not None:
        return f"≤ {fmt(spec.hi)}"
    return ""


def parse_value(spec: FieldSpec, raw: str | None) -> Any:
    """The value of one field, or ValueError with the message to show at the field."""
    text = (raw or "").strip()
    if spec.kind == "money":
        text = text.removeprefix("$").strip()
    if not text:
        if spec.required:
            what = {"int": "a whole number", "float": "a number", "money": "an amount"}.get(spec.kind, "a value")
            rng = _range_text(spec)
            raise ValueError(f"required: {what}" + (f" ({rng})" if rng else ""))
        return None
    if spec.kind == "url":
        from core.llm.urls import BadBaseURL, normalize

        try:
            return normalize(text)
        except BadBaseURL as exc:
            raise ValueError(str(exc)) from None
    if spec.kind in ("text", "path", "choice"):
        if spec.kind == "choice" and spec.choices and text not in {v for _, v in spec.choices if v}:
            raise ValueError(f"not one of {', '.join(v for _, v in spec.choices if v)}")
        return text
    if spec.kind == "int":
        try:
            value: float = int(text.replace("_", ""), 10)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
    else:
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {text!r}")
    if spec.lo is not None and value < spec.lo:
        raise ValueError(f"must be at least {spec.lo:g}")
    if spec.hi is not None and value > spec.hi:
        raise ValueError(f"must be at most {spec.hi:g}")
    return value


def parse_form(specs: tuple[FieldSpec, ...], values: dict[str, str]) -> dict[str, Any]:
    """Every field's value (keys of the specs), or FormErrors naming each bad field."""
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            out[spec.key] = parse_value(spec, values.get(spec.key, spec.default))
        except ValueError as exc:
            errors[spec.key] = str(exc)
    if errors:
        raise FormErrors(errors)
    return out


# --- the two start forms -------------------------------------------------------------------------


def campaign_fields() -> tuple[FieldSpec, ...]:
    """Numbers of a campaign (the spec, provider and model come first, from elsewhere)."""
    from core.models import CampaignSettings as S

    def f(key: str, label: str, kind: str = "int", *, required: bool = True, default: str = "",
          **kw: Any) -> FieldSpec:
        lo, hi = _bounds(S, key)
        return FieldSpec(key, label, kind, required, default, lo, hi, **kw)

    return (
        f("generations", "Generations N", default=str(CAMPAIGN_DEFAULTS["generations"]),
          help="generations to judge (interrupted ones are redone)"),
        f("parallelism", "Parallelism P", default=str(CAMPAIGN_DEFAULTS["parallelism"])),
        f("max_retries", "Retries / gen", default=str(CAMPAIGN_DEFAULTS["max_retries"]),
          help="informed retries per failed generation"),
        f("seed", "Seed", default="0"),
        f("budget_usd", "Budget $", "money", required=False, placeholder="no cap"),
        f("budget_tokens", "Budget tokens", required=False, placeholder="no cap"),
        f("budget_wall_s", "Wall time (s)", "float", required=False, placeholder="no cap"),
    )


def evolution_fields() -> tuple[FieldSpec, ...]:
    from core.evolution.settings import EvolutionSettings as S

    def f(key: str, label: str, kind: str = "int", *, required: bool = True, default: str = "",
          **kw: Any) -> FieldSpec:
        lo, hi = _bounds(S, key)
        return FieldSpec(key, label, kind, required, default, lo, hi, **kw)

    d = EVOLUTION_DEFAULTS
    return (
        f("budget_generations", "Budget gens", default=str(d["budget_generations"]),
          help="generations across all campaigns of the run"),
        f("budget_usd", "Budget $", "money", required=False, placeholder="no cap"),
        f("screen_generations", "Screen gens", default=str(d["screen_generations"])),
        f("full_generations", "Full gens", default=str(d["full_generations"])),
        f("parallelism", "Parallelism P", default=str(d["parallelism"])),
        f("seed", "Seed", default="0"),
        f("max_observations", "Observations", required=False, placeholder="no cap"),
    )


# The rig backends a start may choose (label, value): the settings models' ``backend`` values.
BACKENDS: tuple[tuple[str, str], ...] = (("docker", "docker"), ("bwrap (weaker)", "bwrap"),
                                         ("none (trusted)", "none"))

# A campaign's reproduction and sealed-vector policy (label, value): CampaignSettings' values.
REPRODUCTION_CHOICES: tuple[tuple[str, str], ...] = (("off", "off"), ("every promoted", "every"),
                                                     ("a 25% sample", "sample"))
SEALED_CHOICES: tuple[tuple[str, str], ...] = (("gate viability", "gate"), ("score only", "score"))
EXAMINER_CHOICES: tuple[tuple[str, str], ...] = (("score only", "score"), ("gate viability", "gate"), ("off", "off"))
REDTEAM_CHOICES: tuple[tuple[str, str], ...] = (("off", "off"), ("every viable", "every"), ("a 25% sample", "sample"))

# Defaults of a new campaign / evolution run: the form and `cambrian ... start` share them.
CAMPAIGN_DEFAULTS: dict[str, Any] = {"generations": 6, "parallelism": 2, "max_retries": 1}
EVOLUTION_DEFAULTS: dict[str, Any] = {"budget_generations": 160, "screen_generations": 4,
                                      "full_generations": 12, "parallelism": 2}


def evolution_budget_problem(budget_generations: int, screen_generations: int,
                             full_generations: int) -> str | None:
    """Why a generation budget cannot give a single observation, or None. The run spends
    ``full_generations`` on the base spec first, then each variant's screening needs
    ``screen_generations`` more before anything is learned."""
    need = full_generations + screen_generations
    if budget_generations < need:
        return (f"{budget_generations} generation{'s' if budget_generations != 1 else ''} is too small for this "
                f"design: the base campaign takes {full_generations} (Full gens) and every variant's "
                f"screening {screen_generations} more; give at least {need}")
    return None


def parse_models(text: str, *, provider: str | None = None, base_url: str | None = None) -> list[str]:
    """"M1, M2" -> ["M1", "M2"]; ValueError when only separators were given. With the run's
    ``provider``, each choice is checked as a model reference ``[provider:]model[@base_url]``
    (``core.llm.config.ModelRef``): a choice naming no model or a server by a bad URL is
    refused here, not when the run reaches it."""
    models = [m.strip() for m in (text or "").split(",") if m.strip()]
    if (text or "").strip() and not models:
        raise ValueError("give at least one model name")
    if provider is not None:
        model_refs(models, provider=provider, base_url=base_url)
    return models


def model_refs(models: list[str], *, provider: str, base_url: str | None = None) -> list[Any]:
    """The model references of an evolution run's choices (ValueError naming a bad one)."""
    from core.llm.config import ModelRef
    from core.llm.urls import BadBaseURL, normalize

    out = []
    for m in models:
        ref = ModelRef.parse(m, provider=provider, base_url=base_url)
        if ref.base_url is not None:
            try:
                ref = ModelRef(ref.provider, ref.model, normalize(ref.base_url))
            except BadBaseURL as exc:
                raise ValueError(f"{m}: {exc}") from None
        if ref.provider == "sim" and ref.base_url:
            raise ValueError(f"{m}: the sim provider has no server")
        out.append(ref)
    return out
