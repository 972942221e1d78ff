"""The status bar: engine alive/paused, SIMULATED badge, campaign, budget, provider, home.

One line, fitted to the width: parts are dropped whole, least important first (home,
provider, budget), never cut in the middle of a word; the campaign's own text is
shortened at a word boundary only when it alone does not fit.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from core.app.fmt import human_tokens, money
from core.app.models import StatusView


def budget_text(info: StatusView) -> str:
    c = info.campaign
    if c is None:
        return ""
    s = c.settings
    parts = []
    cap_usd = s.get("budget_usd")
    if cap_usd and c.unpriced_calls:  # a share of an unknown sum is unknown too
        parts.append(f"[$text-warning]{money(c.cost_usd, c.unpriced_calls)}[/] / ${cap_usd:.2f}")
    elif cap_usd:
        pct = 100 * c.cost_usd / cap_usd if cap_usd else 0
        colour = "$text-error" if pct >= 90 else "$text-warning" if pct >= 70 else "$text"
        parts.append(f"[{colour}]${c.cost_usd:.2f}[/] / ${cap_usd:.2f} ({pct:.0f}%)")
    else:
        parts.append(f"{money(c.cost_usd, c.unpriced_calls)} [dim](no $ cap)[/]")
    cap_tok = s.get("budget_tokens")
    if cap_tok:
        parts.append(f"{human_tokens(c.tokens)} / {human_tokens(cap_tok)} tok")
    else:
        parts.append(f"{human_tokens(c.tokens)} tok")
    return "budget " + " · ".join(parts)


def engine_text(info: StatusView) -> str:
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


def campaign_text(info: StatusView) -> str:
    c = info.campaign
    if c is None:
        return "all generations"
    state_colour = {"running": "$text-success", "paused": "$text-warning", "completed": "$text-primary",
                    "crashed": "$text-error", "aborted": "$text-error", "stopped": "$text-warning"}.get(c.state, "$text")
    text = f"[b]{c.id}[/] [{state_colour}]{c.state}[/] {c.progress}"
    if c.reason and c.state in ("stopped", "crashed", "aborted", "paused"):
        text += f" [dim]({escape_markup(c.reason)})[/]"
    return text


def escape_markup(text: str) -> str:
    from textual.markup import escape

    return escape(text)


def shorten(content: Content, width: int) -> Content:
    """Cut at the last space that fits, with an ellipsis (never mid-word when avoidable)."""
    if content.cell_length <= width:
        return content
    if width <= 1:
        return Content("…")
    plain = content.plain
    cut = plain.rfind(" ", 0, width - 1)
    if cut < width // 2:
        cut = width - 1
    return content[:cut].rstrip() + Content("…")


def fit(parts: list[tuple[int, Content]], width: int, sep: str = "  ") -> Content:
    """Join ``(priority, content)`` parts in order, dropping the lowest priorities until the
    line fits; the top-priority part is shortened if it alone is too wide."""
    keep = [p for p in parts if p[1].cell_length]
    while keep:
        total = sum(c.cell_length for _, c in keep) + len(sep) * (len(keep) - 1)
        if total <= width or len(keep) == 1:
            break
        lowest = min(range(len(keep)), key=lambda i: (keep[i][0], -i))
        keep.pop(lowest)
    if not keep:
        return Content("")
    line = Content(sep).join([c for _, c in keep])
    return shorten(line, width)


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.info: StatusView | None = None
        self._last: tuple | None = None

    def update_status(self, info: StatusView) -> None:
        self.info = info
        self._render_fitted()

    def on_resize(self) -> None:
        self._render_fitted()

    @property
    def simulated(self) -> bool:
        info = self.info
        if info is None:
            return False
        c = info.campaign
        return bool((c is not None and c.simulated) or info.any_simulated)

    def parts(self) -> list[tuple[int, Content]]:
        info = self.info
        if info is None:
            return [(9, Content.from_markup("[dim]…[/]"))]
        c = info.campaign
        show_home = getattr(self.app, "show_home", True)
        out: list[tuple[int, Content]] = [(8, Content.from_markup(engine_text(info)))]
        if self.simulated:
            out.append((9, Content.styled(" SIMULATED ", "bold $background on $warning")))
        out.append((7, Content.from_markup(campaign_text(info))))
        out.append((5, Content.from_markup(budget_text(info))))
        if info.hosts:  # rig hosts configured: how many serve, and a warning when one is drained
            drained = sum(1 for _n, why in info.hosts if why)
            text = f"hosts {len(info.hosts) - drained}/{len(info.hosts)}"
            key = getattr(self.app, "key_label", lambda _k: "f6")("app.mode.hosts")
            key = key.upper() if key[:1] == "f" and key[1:].isdigit() else key  # F6, as keyboards print it
            out.append((6, Content.styled(text + (f" ⚠{drained} drained ({key})" if drained else ""),
                                          "$text-warning" if drained else "$text-muted")))
        if c is not None:
            out.append((3, Content(f"{c.provider} · {c.model}")))
        if show_home:
            out.append((1, Content.styled(_short_home(info.home), "$text-muted")))
        return out

    def _render_fitted(self) -> None:
        width = max(1, self.content_region.width or self.size.width or 80)
        key = (width, tuple(c.markup for _, c in self.parts()))
        if key == self._last:
            return  # unchanged: no re-render (this runs every second while campaigns run)
        self._last = key
        self.update(fit(self.parts(), width))


def _short_home(home: str, limit: int = 28) -> str:
    if len(home) <= limit:
        return home
    return "…" + home[-(limit - 1):]
