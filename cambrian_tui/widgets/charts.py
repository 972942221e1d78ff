"""Fitness charts (textual-plotext): viability with its interval, cost and tokens, tests, and
the verification layers (visible vs sealed vectors, examiner pass rate, red-team score)."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.widgets import Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot as _PlotextPlot


class PlotextPlot(_PlotextPlot):
    """A plot that is built once per (data, size, theme), not on every repaint."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.version = 0
        self._cache_key: tuple | None = None
        self._cache = None

    def replot(self) -> None:
        self.version += 1
        self.refresh()

    def render(self):
        key = (self.version, self.size, self.app.theme)
        if key != self._cache_key or self._cache is None:
            self._cache = super().render()
            self._cache_key = key
        return self._cache

from core.app.fmt import human_tokens, money
from core.app.models import CampaignSummary

CHARTS = ("viability", "cost", "tests", "layers")


def headline(s: CampaignSummary | None) -> str:
    """One line of campaign figures (plain text with Textual markup)."""
    if s is None:
        return "[dim]loading…[/]"
    if s.generations == 0:
        return "[dim]no generations yet[/]"
    parts = []
    if s.viability_rate is not None and s.viability_interval is not None:
        lo, hi = s.viability_interval
        parts.append(f"[b]viability {s.viability_rate * 100:.1f}%[/] [dim]95% {lo * 100:.0f}–{hi * 100:.0f}%[/]")
    else:
        parts.append("viability [dim]n/a[/]")
    parts.append(f"[$text-success]✓{s.viable}[/] [$text-error]✗{s.failed}[/]")
    if s.running:
        parts.append(f"[$text-accent]●{s.running}[/]")
    parts.append(f"{s.progress} done")  # the campaign list's figure
    if s.fertility_tested:
        parts.append(f"[b]fertility {s.fertile}/{s.fertility_tested}[/]")
    if s.failure_stages:  # every stage, as `campaign status --json` counts them
        parts.append("[dim]fails:[/] " + ", ".join(f"{k} {v}" for k, v in s.failure_stages.items()))
    if s.sealed and s.sealed.get("visible_pass_rate") is not None:
        # what the writer saw vs what it did not: the generalisation gap
        parts.append(f"vectors {s.sealed['visible_pass_rate'] * 100:.0f}% · sealed "
                     f"{s.sealed['sealed_pass_rate'] * 100:.0f}% [dim]gap {s.sealed['gap'] * 100:+.0f}pp[/]")
    if s.examiner and s.examiner.get("pass_rate") is not None:
        exam = f"examiner {s.examiner['pass_rate'] * 100:.0f}%"
        if s.examiner.get("suspects"):  # a person should look: the Layers tab dismisses them
            exam += f" [$text-warning]⚠{len(s.examiner['suspects'])} suspect[/]"
        parts.append(exam)
    if s.redteam and s.redteam.get("mean_score") is not None:
        parts.append(f"red team {s.redteam['mean_score']:.2f}")
    parts.append(f"{money(s.cost_usd, s.unpriced_calls)} · {human_tokens(s.tokens)} tok")
    if s.cost_per_viable is not None:
        parts.append(f"[dim]${s.cost_per_viable:.3f}/viable[/]")
    return "  ·  ".join(parts)


def int_ticks(plt, x: list[int], width: int | None = None) -> None:
    """Whole-number x ticks (generations, observations): plotext's own are fractional.
    ``width``: the plot's columns; labels need room, so a narrow plot gets fewer ticks."""
    if not x:
        return
    lo, hi = min(x), max(x)
    if hi == lo:
        plt.xticks([lo], [str(lo)])
        return
    most = 6 if width is None else max(2, min(6, (width - 8) // (len(str(hi)) + 4)))
    if hi - lo <= most:
        ticks = list(range(lo, hi + 1))
    else:
        # evenly spaced at a round step (1, 2, 5 × 10^k): 0 2 4 6, not 0 2 4 5 7
        raw = (hi - lo) / max(1, most - 1)
        mag = 10 ** math.floor(math.log10(raw))
        step = next(int(m * mag) for m in (1, 2, 5, 10) if m * mag >= raw)
        ticks = list(range(-(-lo // step) * step, hi + 1, step))
    plt.xticks(ticks, [str(t) for t in ticks])


class FitnessCharts(Vertical):
    DEFAULT_CSS = """
    FitnessCharts { height: 1fr; }
    FitnessCharts #headline { height: auto; max-height: 3; padding: 0 1; color: $text; }
    FitnessCharts TabbedContent { height: 1fr; }
    FitnessCharts TabPane { padding: 0; }
    FitnessCharts PlotextPlot { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.summary: CampaignSummary | None = None

    def compose(self) -> ComposeResult:
        yield Static(headline(None), id="headline", markup=True)
        with TabbedContent(id="chart-tabs"):
            with TabPane("Viability", id="chart-viability"):
                yield PlotextPlot(id="plot-viability")
            with TabPane("Cost & tokens", id="chart-cost"):
                yield PlotextPlot(id="plot-cost")
            with TabPane("Tests", id="chart-tests"):
                yield PlotextPlot(id="plot-tests")
            with TabPane("Layers", id="chart-layers"):
                yield PlotextPlot(id="plot-layers")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _t: self._draw())
        self._draw()

    def on_resize(self) -> None:
        self._draw()  # tick density follows the width

    def cycle(self) -> str:
        tabs = self.query_one(TabbedContent)
        ids = [f"chart-{c}" for c in CHARTS]
        cur = tabs.active if tabs.active in ids else ids[0]
        nxt = ids[(ids.index(cur) + 1) % len(ids)]
        tabs.active = nxt
        return nxt.removeprefix("chart-")

    def update_summary(self, summary: CampaignSummary) -> None:
        self.summary = summary
        self.query_one("#headline", Static).update(headline(summary))
        self._draw()

    # drawing -------------------------------------------------------------------------------

    def _rgb(self, var: str) -> tuple[int, int, int]:
        try:
            c = Color.parse(self.app.theme_variables.get(var, "white"))
            return (c.r, c.g, c.b)
        except Exception:
            return (200, 200, 200)

    def _draw(self) -> None:
        s = self.summary
        self._draw_viability(self.query_one("#plot-viability", PlotextPlot), s)
        self._draw_cost(self.query_one("#plot-cost", PlotextPlot), s)
        self._draw_tests(self.query_one("#plot-tests", PlotextPlot), s)
        self._draw_layers(self.query_one("#plot-layers", PlotextPlot), s)

    def _reset(self, plot: PlotextPlot):
        plt = plot.plt
        plt.clear_figure()
        plt.clear_data()
        return plt

    def _draw_viability(self, plot: PlotextPlot, s: CampaignSummary | None) -> None:
        plt = self._reset(plot)
        plt.title("viability % (running rate, 95% interval)")
        if s is None or not s.trend:
            plt.title("viability % — no finished generations yet")
            plot.replot()
            return
        x = [p.number for p in s.trend]
        muted = self._rgb("foreground-muted") if "foreground-muted" in self.app.theme_variables else (128, 128, 128)
        plt.plot(x, [p.hi * 100 for p in s.trend], color=muted, marker="braille")
        plt.plot(x, [p.lo * 100 for p in s.trend], color=muted, marker="braille")
        plt.plot(x, [p.rate * 100 for p in s.trend], color=self._rgb("success"), marker="braille",
                 label="viability" if s.fertility_trend else None)
        if s.fertility_trend:  # reproduction on: the running fertility rate, by breeder
            plt.title("viability and fertility % (running rates; 95% interval of viability)")
            plt.plot([p.number for p in s.fertility_trend], [p.rate * 100 for p in s.fertility_trend],
                     color=self._rgb("accent"), marker="braille", label="fertility")
        plt.ylim(0, 100)
        int_ticks(plt, x, plot.size.width)
        plt.xlabel("generation")
        plot.replot()

    def _draw_cost(self, plot: PlotextPlot, s: CampaignSummary | None) -> None:
        plt = self._reset(plot)
        unknown = s is not None and s.unpriced_calls
        plt.title("cumulative cost ($, left; unknown prices as $0) and tokens (right)" if unknown
                  else "cumulative cost ($, left) and tokens (right)")
        if s is None or not s.cost_x:
            plot.replot()
            return
        plt.plot(s.cost_x, s.cost_cum, color=self._rgb("warning"), marker="braille", yside="left",
                 label="$")
        plt.plot(s.cost_x, s.tokens_cum, color=self._rgb("accent"), marker="braille", yside="right",
                 label="tokens")
        if max(s.cost_cum, default=0.0) <= 0:
            plt.ylim(0, 1, yside="left")  # all free (sim): no axis below $0
        if max(s.tokens_cum, default=0) <= 0:
            plt.ylim(0, 1, yside="right")
        int_ticks(plt, s.cost_x, plot.size.width)
        plt.xlabel("generation")
        plot.replot()

    def _draw_tests(self, plot: PlotextPlot, s: CampaignSummary | None) -> None:
        plt = self._reset(plot)
        plt.title("tests run / passed per generation")
        if s is None or not s.tests_x:
            plot.replot()
            return
        plt.plot(s.tests_x, s.tests_run, color=self._rgb("primary"), marker="braille", label="run")
        plt.plot(s.tests_x, s.tests_passed, color=self._rgb("success"), marker="braille", label="passed")
        plt.ylim(0, max(max(s.tests_run, default=0), 1))
        int_ticks(plt, s.tests_x, plot.size.width)
        plt.xlabel("generation")
        plot.replot()

    def _draw_layers(self, plot: PlotextPlot, s: CampaignSummary | None) -> None:
        plt = self._reset(plot)
        if s is None or not s.layer_series:
            plt.title("verification layers — none ran (no sealed vectors, examiner off, no red team)")
            plot.replot()
            return
        plt.title("pass % per generation: visible vs sealed vectors, examiner, red-team score")
        colours = {"visible": "primary", "sealed": "warning", "examiner": "accent", "redteam": "error"}
        labels = {"visible": "visible", "sealed": "sealed", "examiner": "examiner", "redteam": "red team"}
        xs_all: list[int] = []
        for key in ("visible", "sealed", "examiner", "redteam"):
            if key in s.layer_series:
                xs, ys = s.layer_series[key]
                plt.plot(xs, [y * 100 for y in ys], color=self._rgb(colours[key]), marker="braille",
                         label=labels[key])
                xs_all += xs
        plt.ylim(0, 100)
        int_ticks(plt, sorted(set(xs_all)), plot.size.width)
        plt.xlabel("generation")
        plot.replot()
