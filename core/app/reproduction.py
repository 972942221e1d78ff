"""What the inspector's Reproduction tab shows: one offspring's fertility test (DESIGN §7) —
the rig's request to the running offspring, the calls it made through the LLM gateway, and
the verdict on what it bred — or, for a bred generation, which organism wrote it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BredVerdict:
    number: int
    outcome: str
    failure_stage: str | None
    reason: str | None


@dataclass(frozen=True)
class ReproductionView:
    generation: int
    status: str                    # fertile | infertile | error
    stage: str | None              # where it failed: reproduce | gateway | offspring:<stage>
    reason: str | None
    request: dict[str, Any]        # path, generation, status, ms, why, files, response
    calls: tuple[dict[str, Any], ...] = ()
    cut_off: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    rig_ms: int | None = None
    offspring: BredVerdict | None = None
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def reproduction_view(row: dict[str, Any], offspring: BredVerdict | None) -> ReproductionView:
    gw = row.get("gateway") or {}
    return ReproductionView(
        generation=int(row["generation"]), status=str(row["status"]), stage=row.get("stage"),
        reason=row.get("reason"), request=dict(row.get("request") or {}),
        calls=tuple(c for c in gw.get("calls") or () if isinstance(c, dict)), cut_off=gw.get("cut_off"),
        tokens=int(row.get("tokens") or 0), cost_usd=float(row.get("cost_usd") or 0.0),
        rig_ms=row.get("rig_ms"), offspring=offspring, created_at=str(row.get("created_at") or ""))


def _clip(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reproduction_lines(view: ReproductionView | None, bred_by: int | None, number: int) -> list[str]:
    """Plain lines, the same for the TUI tab and the CLI."""
    out: list[str] = []
    if bred_by is not None:
        out += [f"#{number} was bred by the running offspring #{bred_by} (its POST to the organism's "
                "own generate endpoint), not by the engine; it is in no campaign's count.", ""]
    if view is None:
        if bred_by is None:
            out.append(f"#{number} was not asked to breed (reproduction off for its campaign, not "
                       "sampled, not viable, or its spec declares no `reproduce`).")
        return out
    head = {"fertile": "FERTILE — its offspring is viable",
            "infertile": "INFERTILE", "error": "NOT JUDGED (error)"}.get(view.status, view.status.upper())
    out.append(f"Fertility test of #{view.generation}: {head}")
    if view.stage:
        out.append(f"  stage   {view.stage}")
    if view.reason:
        out.append(f"  reason  {_clip(view.reason, 600)}")
    spent = f"{view.tokens:,} tokens · ${view.cost_usd:.4f}"
    if view.rig_ms is not None:
        spent += f" · rig {view.rig_ms / 1000:.1f} s"
    out += [f"  spent   {spent}", ""]
    r = view.request
    out.append(f"Request  POST {r.get('path') or '?'}  (its own spec, generation {r.get('generation')})")
    answered = r.get("status")
    line = f"  answer  {answered if answered is not None else 'none'}"
    if r.get("ms") is not None:
        line += f" in {int(r['ms']) / 1000:.1f} s"
    if r.get("error"):
        line += f" · {_clip(r['error'])}"
    out.append(line)
    if r.get("why"):
        out.append(f"  why     {_clip(r['why'])}")
    if r.get("files"):
        files = list(r["files"])
        out.append(f"  wrote   {len(files)} files: {', '.join(files[:8])}{' …' if len(files) > 8 else ''}")
    if r.get("response") and answered != 200:
        out.append(f"  body    {_clip(r['response'])}")
    out += ["", f"Calls through the LLM gateway: {len(view.calls)}"]
    for c in view.calls:
        line = (f"  {c.get('index', '?'):>2}. {c.get('status')}  asked {c.get('asked_model') or '?'} → "
                f"{c.get('model')}  in {c.get('input_tokens', 0):,} out {c.get('output_tokens', 0):,}"
                f"  {int(c.get('ms') or 0) / 1000:.1f} s{'  stream' if c.get('stream') else ''}")
        if not c.get("forwarded", True):
            line += "  (refused by the gateway)"
        if c.get("error"):
            line += f"  {_clip(c['error'], 160)}"
        out.append(line)
    if view.cut_off:
        out.append(f"  cut off: {_clip(view.cut_off)}")
    off = view.offspring
    out.append("")
    if off is None:
        out.append("Bred offspring: none (nothing to judge)")
    else:
        verdict = off.outcome if not off.failure_stage or off.outcome == "promoted" else \
            f"{off.outcome}@{off.failure_stage}"
        out.append(f"Bred offspring: #{off.number}  {verdict}")
        if off.reason and off.outcome != "promoted":
            out.append(f"  {_clip(off.reason, 600)}")
        out.append(f"  (open #{off.number} in the inspector for its report)")
    return out
