"""The status bar: engine alive/paused, budget used vs cap, provider, SIMULATED badge."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from cambrian_tui.data import StatusInfo, human_tokens


def budget_text(info: StatusInfo) -> str:
    c = info.campaign
    if c is None:
        return ""
    s = c.settings
    parts = []
    cap_usd = s.get("budget_usd")
    if cap_usd:
        pct = 100 * c.cost_usd / cap_usd if cap_usd else 0
        colour = "$text-error" if pct >= 90 else "$text-warning" if pct >= 70 else "$text"
        parts.append(f"[{colour}]${c.cost_usd:.2f}[/] / ${cap_usd:.2f} ({pct:.0f}%)")
    else:
        parts.append(f"${c.cost_usd:.2f} [dim](no $ cap)[/]")
    cap_tok = s.get("budget_tokens")
    if cap_tok:
        parts.append(f"{human_tokens(c.tokens)} / {human_tokens(cap_tok)} tok")
    else:
        parts.append(f"{human_tokens(c.tokens)} tok")
    return "budget " + " · ".join(parts)


def engine_text(info: StatusInfo) -> str:
    c = info.campaign
    if c is None:
        n = info.engines_alive
        return f"[$text-success]● {n} engine{'s' if n != 1 else ''} running[/]" if n else "[dim]○ no engine running[/]"
    if c.engine_alive:
        if c.state == "paused":
            return f"[$text-warning]‖ engine paused[/] [dim]pid {c.engine_pid}[/]"
        return f"[$text-success]● engine alive[/] [dim]pid {c.engine_pid}[/]"
    if c.state in ("running", "paused", "pending"):
        return "[$text-error]○ engine not running[/]"
    return "[dim]○ engine idle[/]"


def campaign_text(info: StatusInfo) -> str:
    c = info.campaign
    if c is None:
        return "all generations"
    state_colour = {"running": "$text-success", "paused": "$text-warning", "completed": "$text-primary",
                    "crashed": "$text-error", "aborted": "$text-error", "stopped": "$text-warning"}.get(c.state, "$text")
    text = f"[b]{c.id}[/] [{state_colour}]{c.state}[/] {c.progress}"
    if c.reason and c.state in ("stopped", "crashed", "aborted"):
        reason = c.reason if len(c.reason) <= 40 else c.reason[:39] + "…"
        text += f" [dim]({escape_markup(reason)})[/]"
    return text


def escape_markup(text: str) -> str:
    from textual.markup import escape

    return escape(text)


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
    }
    StatusBar > Static { width: auto; padding: 0 1; }
    StatusBar > #sb-sim {
        background: $warning;
        color: $background;
        text-style: bold;
        display: none;
    }
    StatusBar > #sb-sim.on { display: block; }
    StatusBar > #sb-spacer { width: 1fr; }
    StatusBar > #sb-home { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("[dim]…[/]", id="sb-engine")
        yield Static(" SIMULATED ", id="sb-sim")
        yield Static("", id="sb-campaign")
        yield Static("", id="sb-budget")
        yield Static("", id="sb-provider")
        yield Static("", id="sb-spacer")
        yield Static("", id="sb-home")

    _last: tuple | None = None

    def update_status(self, info: StatusInfo) -> None:
        c = info.campaign
        sim = c.simulated if c is not None else info.any_simulated
        if c is not None and not sim:
            sim = info.any_simulated
        show_home = getattr(self.app, "show_home", True)
        texts = (engine_text(info), campaign_text(info), budget_text(info),
                 f"{c.provider} · {c.model}" if c else "", bool(sim),
                 _short_home(info.home) if show_home else "")
        if texts == self._last:
            return  # unchanged: no re-layout (this runs every second while campaigns run)
        self._last = texts
        for wid, text in zip(("#sb-engine", "#sb-campaign", "#sb-budget", "#sb-provider"), texts):
            self.query_one(wid, Static).update(text)
        self.query_one("#sb-sim", Static).set_class(texts[4], "on")
        self.query_one("#sb-home", Static).update(texts[5])


def _short_home(home: str, limit: int = 28) -> str:
    if len(home) <= limit:
        return home
    return "…" + home[-(limit - 1):]
