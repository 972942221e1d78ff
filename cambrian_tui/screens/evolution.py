"""Evolution screen (DESIGN §11): evolution runs, their observations, the best-so-far with
its interval, which operators helped, and jumps to an observation's campaign and to its spec
diff against the parent.

Reads go through ``core.app`` (``EvolutionRun``: the view ``cambrian evolve status --json``
prints, typed) in thread workers; pause / resume / abort and the export are typed commands
(``core.app.commands``), as for campaigns.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.markup import escape
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from cambrian_tui.keys import bindings
from cambrian_tui.messages import CommandDone
from cambrian_tui.nav import ShowCampaign, ShowRun, ShowSpec, Target
from cambrian_tui.screens.base import CambrianScreen, LivenessCheck
from cambrian_tui.widgets.charts import PlotextPlot, int_ticks
from cambrian_tui.widgets.side_diff import SideBySideDiff
from core.app.commands import BestExported, ControlDone, ControlEvolution, ExportBest
from core.app.fmt import money
from core.app.models import RunRow, short_hash
from core.evolution.describe import current_line, prior_line


# --- messages (workers → screen) ------------------------------------------------------------


class RunsLoaded(Message):
    def __init__(self, runs: list[RunRow]) -> None:
        super().__init__()
        self.runs = runs


class RunLoaded(Message):
    def __init__(self, run: Any) -> None:  # core.app.evolution_views.EvolutionRun
        super().__init__()
        self.run = run


class ObservationDiffLoaded(Message):
    def __init__(self, index: int, left: Any, right: Any, note: str) -> None:
        super().__init__()
        self.index = index
        self.left = left
        self.right = right
        self.note = note


# A new run is "pending" until its process takes the lease (start waits up to 30 s for it)
SPAWN_GRACE_S = 30.0


def _age_s(created_at: str | None) -> float:
    from datetime import datetime, timezone

    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(created_at or "")).total_seconds()
    except ValueError:
        return float("inf")


def _orphaned(state: str, alive: bool, created_at: str | None = None) -> bool:
    """The run says it is going but no process holds it (killed, or the machine rebooted).
    A run that is still starting is not orphaned."""
    if alive or state not in ("running", "pending"):
        return False
    return state == "running" or _age_s(created_at) > SPAWN_GRACE_S


def _state_cell(state: str, alive: bool, created_at: str | None = None) -> str:
    if alive:
        return state + "●"
    return "stalled" if _orphaned(state, alive, created_at) else state


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


class EvolutionScreen(CambrianScreen):
    CSS_PATH = "evolution.tcss"
    HELP_TITLE = "Evolution"
    AUTO_FOCUS = "#evo-obs"

    BINDINGS = bindings("evolution")
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    WATCH = frozenset({"campaigns", "generations", "observations", "leases", "specs"})

    def __init__(self) -> None:
        super().__init__(id="evolution")
        self.runs: list[RunRow] = []
        self.run_id: str | None = None
        self.status: Any = None  # EvolutionRun
        self.obs_by_index: dict[int, Any] = {}
        self.diff_index: int | None = None
        self._dirty = False
        self._liveness = LivenessCheck()
        self._binding_state: object = object()
        self._select_after_load: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="evo-top"):
            yield DataTable(id="evo-runs", cursor_type="row")
            yield Static("[dim]loading…[/]", id="evo-headline")
        with Horizontal(id="evo-body"):
            yield DataTable(id="evo-obs", cursor_type="row")
            with Vertical(id="evo-side"):
                yield PlotextPlot(id="evo-chart")
                yield DataTable(id="evo-ops", cursor_type="row")
        with Vertical(id="evo-diff-pane"):
            yield Static("", id="evo-diff-header")
            yield SideBySideDiff(id="evo-diff")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        runs = self.query_one("#evo-runs", DataTable)
        runs.border_title = "Evolution runs"
        for label, key, width in (("run", "id", 22), ("state", "state", 10), ("obs", "obs", 3), ("best", "best", 4)):
            runs.add_column(label, key=key, width=width)
        obs = self.query_one("#evo-obs", DataTable)
        obs.border_title = "Observations"
        # the free-text result goes last and sizes itself: cut or scrolled, it hides no other column
        for label, key, width in (("#", "i", 3), ("mutation", "what", 33), ("model", "model", 10),
                                  ("rate", "rate", 4), ("95%", "ci", 6), ("P>", "p", 4),
                                  ("gens", "gens", 4), ("result", "result", None)):
            obs.add_column(label, key=key, width=width)
        ops = self.query_one("#evo-ops", DataTable)
        ops.border_title = "Operators"
        for label, key, width in (("operator", "op", 9), ("asked", "tried", 5), ("run", "run", 3),
                                  ("rej", "rej", 3), ("prom", "prom", 4), ("acc", "acc", 3),
                                  ("gain", "gain", 4)):
            ops.add_column(label, key=key, width=width)
        self.query_one("#evo-chart").border_title = "Best so far (95% interval)"
        diff = self.query_one("#evo-diff", SideBySideDiff)
        diff.border_title = "Spec diff vs parent"
        diff.empty_text = "select an observation to see its spec against its parent's"
        self.query_one("#evo-diff-pane").display = False
        if self.capp.live:
            self.set_interval(self.capp.refresh_interval, self._tick, name="evolution-refresh")
        self.reload()

    # loading --------------------------------------------------------------------------------

    def reload(self) -> None:
        self._dirty = False
        self._liveness.reloaded()
        reads = self.reads
        self.background("evolution runs", lambda: RunsLoaded(reads.evolution_runs()))
        self._load_run()

    def _load_run(self) -> None:
        rid = self.run_id
        if rid is None:
            return
        reads = self.reads
        self.background("evolution run", lambda: RunLoaded(reads.evolution_run(rid)))

    def on_data(self, topics: frozenset[str]) -> None:
        self._dirty = True
        if not self.capp.live:
            self.reload()

    def navigate(self, target: Target) -> None:
        if isinstance(target, ShowRun):
            if target.run_id in [r.id for r in self.runs]:
                self.select_run(target.run_id)
            else:
                self._select_after_load = target.run_id
                self.reload()

    def _tick(self) -> None:
        # a starting ("pending") run is watched like a live one: it turns stalled if it never starts
        watched = any(r.alive or r.state == "pending" for r in self.runs)
        if self.is_current and (self._dirty or self._liveness.due(watched)):
            self.reload()

    def action_refresh(self) -> None:
        self.reload()

    # runs -------------------------------------------------------------------------------------

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs = message.runs
        table = self.query_one("#evo-runs", DataTable)
        wanted = [r.id for r in self.runs]
        cells = {r.id: (r.id, _state_cell(r.state, r.alive, r.created_at), str(r.observations),
                        _pct(r.best_rate)) for r in self.runs}
        if [str(k.value) for k in table.rows] == wanted:
            for rid, row in cells.items():
                for col, value in zip(("id", "state", "obs", "best"), row):
                    table.update_cell(rid, col, value)
        else:
            table.clear()
            for rid in wanted:
                table.add_row(*cells[rid], key=rid)
            if self.run_id in wanted:
                table.move_cursor(row=wanted.index(self.run_id), animate=False)
        table.border_title = f"Evolution runs ({len(self.runs)})"
        if not self.runs:
            self.query_one("#evo-headline", Static).update(Content.from_markup(
                "[dim]no evolution runs yet: press [b]n[/b] to start one "
                "(or [b]cambrian evolve start --spec spec/echo.md[/b])[/]"))
        elif self._select_after_load in wanted:
            self.select_run(self._select_after_load)
            self._select_after_load = None
        elif self.run_id is None:
            self.select_run(self.runs[0].id)

    def select_run(self, run_id: str) -> None:
        table = self.query_one("#evo-runs", DataTable)
        keys = [str(k.value) for k in table.rows]
        if run_id in keys:
            table.move_cursor(row=keys.index(run_id), animate=False)
        if run_id != self.run_id:
            self.run_id = run_id
            self.status = None
            self._load_run()

    @on(DataTable.RowHighlighted, "#evo-runs")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and str(event.row_key.value) != self.run_id:
            self.run_id = str(event.row_key.value)
            self.status = None
            self._load_run()

    @on(DataTable.RowSelected, "#evo-runs")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#evo-obs", DataTable).focus()

    # one run ----------------------------------------------------------------------------------

    def on_run_loaded(self, message: RunLoaded) -> None:
        st = message.run
        if st.id != self.run_id:
            return
        self.status = st
        self.obs_by_index = {r.index: r for r in st.observations}
        self._show_headline(st)
        self._fill_observations(st)
        self._fill_operators(st)
        self._draw_chart(st)
        self._sync_bindings()

    def _show_headline(self, st: Any) -> None:
        b, base, bud = st.best, st.base, st.budget
        lo, hi = b.viability_interval
        origin = "base" if b.observation is None else f"#{b.observation}"
        sim = "  [b reverse $warning] SIMULATED [/]" if st.simulated else ""
        state = st.state + (" ●" if st.engine_alive else "")
        lines = [
            f"[b]{st.id}[/]  {state}{sim}",
            f"best [b]{_pct(b.viability_rate)}[/] [dim]95% {lo * 100:.0f}–{hi * 100:.0f}%[/] "
            f"({b.viable}/{b.judged}, {b.model}, {origin} {short_hash(b.spec_hash, 8)})  ·  "
            f"base {_pct(base.viability_rate)}",
            f"gens {bud.generations_planned}/{bud.generations}  ·  {money(bud.usd_spent, bud.unpriced_calls, 4)}"
            + (f" of ${bud.usd:.2f}" if bud.usd is not None else "")
            + f"  ·  {len(st.observations)} obs  ·  accept: P(better) ≥ "
            f"{st.settings['accept_probability']:.2f}",
        ]
        if _orphaned(st.state, st.engine_alive, st.created_at):
            lines.append(f"[b $text-warning]no process runs it[/] (killed, or the machine restarted): "
                         f"[b]{self.capp.key_label('evolution.resume')}[/] resumes from the last observation")
        if st.current is not None:
            lines.append(f"[$text-accent]{escape(current_line(st.current.model_dump(), st.engine_alive))}[/]")
        if st.reason and st.state != "running":
            lines.append(f"[dim]{st.state}: {escape(st.reason)}[/]")
        if st.prior:  # last: the line to lose if the box is full; a cold start shows none
            lines.append(f"[dim]{escape(prior_line(st.prior))}[/]")
        self.query_one("#evo-headline", Static).update(Content.from_markup("\n".join(lines)))

    def _fill_observations(self, st: Any) -> None:
        table = self.query_one("#evo-obs", DataTable)
        rows = []
        for r in st.observations:
            ci = r.viability_interval
            rows.append((str(r.index), (str(r.index), r.detail or r.operator or "", r.model or "",
                                        _pct(r.viability_rate),
                                        f"{ci[0] * 100:.0f}–{ci[1] * 100:.0f}" if ci else "-",
                                        "-" if r.p_better is None else f"{r.p_better:.2f}",
                                        str(r.generations), r.outcome)))
        keys = [str(k.value) for k in table.rows]
        if keys == [k for k, _ in rows]:
            return
        current = table.cursor_row
        follow = current >= len(keys) - 1  # at the newest: keep following
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if rows:
            table.move_cursor(row=len(rows) - 1 if follow else min(current, len(rows) - 1), animate=False)
        table.border_title = f"Observations ({len(rows)})"
        self._show_outcome()

    def _fill_operators(self, st: dict[str, Any]) -> None:
        table = self.query_one("#evo-ops", DataTable)
        table.clear()
        for op, d in sorted(st.operators.items()):
            gain = "-" if d.mean_gain is None else f"{d.mean_gain * 100:+.0f}"  # points of %
            table.add_row(op, str(d.tried), str(d.evaluated), str(d.rejected), str(d.promising),
                          str(d.accepted), gain, key=op)

    def _draw_chart(self, st: dict[str, Any]) -> None:
        plot = self.query_one("#evo-chart", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.clear_data()
        traj = st.trajectory
        x = [t.after + 1 for t in traj]  # 0 = the base, k = after observation k-1
        if not traj or traj[0].viability_rate is None:
            plt.title("best so far — the base campaign is still running")
            plot.replot()
            return
        muted = self._rgb("foreground-muted", (128, 128, 128))
        plt.plot(x, [t.viability_interval[1] * 100 for t in traj], color=muted, marker="braille")
        plt.plot(x, [t.viability_interval[0] * 100 for t in traj], color=muted, marker="braille")
        plt.plot(x, [(t.viability_rate or 0.0) * 100 for t in traj], color=self._rgb("success", (0, 200, 0)),
                 marker="braille", label="incumbent")
        pts = [(r.index + 1, r.viability_rate * 100) for r in st.observations if r.viability_rate is not None]
        if pts:
            plt.scatter([p[0] for p in pts], [p[1] for p in pts], color=self._rgb("accent", (0, 150, 255)),
                        marker="•", label="variants")
        plt.ylim(0, 100)
        plt.xlabel("observation")
        int_ticks(plt, x + [p[0] for p in pts], plot.size.width)
        plot.replot()

    def _rgb(self, var: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
        from textual.color import Color

        try:
            value = self.app.theme_variables.get(var)
            if value is None:
                return default
            c = Color.parse(value)
            return (c.r, c.g, c.b)
        except Exception:
            return default

    # the highlighted observation ------------------------------------------------------------------

    def current_observation(self) -> Any:
        table = self.query_one("#evo-obs", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return self.obs_by_index.get(int(str(key.value)))

    @on(DataTable.RowHighlighted, "#evo-obs")
    def _obs_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_outcome()
        if self.query_one("#evo-diff-pane").display:
            self._load_diff()

    def _show_outcome(self) -> None:
        """The highlighted observation's whole outcome on the table's bottom border: the result
        column is last and is cut on narrow terminals, and rejection reasons are long."""
        table = self.query_one("#evo-obs", DataTable)
        o = self.current_observation()
        if o is None:
            table.border_subtitle = ""
            return
        p = "" if o.p_better is None else f" (P(better) {o.p_better:.2f})"
        table.border_subtitle = escape(f"#{o.index} {o.outcome}{p}")

    @on(DataTable.RowSelected, "#evo-obs")
    def _obs_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_campaign()

    def _jump(self, campaign_id: str | None, what: str) -> None:
        if not campaign_id:
            self.app.notify(f"this observation has no {what}", severity="warning", timeout=4)
            return
        self.capp.navigate(ShowCampaign(campaign_id))

    def action_open_campaign(self) -> None:
        o = self.current_observation()
        if o is not None:
            self._jump(o.campaign_id, "campaign (it was rejected before running)")

    def action_open_screen(self) -> None:
        o = self.current_observation()
        if o is not None:
            self._jump(o.screen_campaign_id, "screening campaign")

    def action_open_spec(self) -> None:
        o = self.current_observation()
        if o is None:
            return
        h = o.spec_hash or o.parent_spec_hash
        if h:
            self.capp.navigate(ShowSpec(h))

    def action_toggle_diff(self) -> None:
        """The diff takes the lower half; the run header and the side column make room."""
        pane = self.query_one("#evo-diff-pane")
        pane.display = not pane.display
        self.query_one("#evo-top").display = not pane.display
        self.query_one("#evo-side").display = not pane.display
        if pane.display:
            self._load_diff()
        else:
            self.query_one("#evo-obs", DataTable).focus()

    def _load_diff(self) -> None:
        o = self.current_observation()
        if o is None:
            return
        self.diff_index = o.index
        reads = self.reads

        def load() -> ObservationDiffLoaded:
            left, right, note = reads.observation_diff(o)
            return ObservationDiffLoaded(o.index, left, right, note)

        self.background("observation diff", load)

    def on_observation_diff_loaded(self, message: ObservationDiffLoaded) -> None:
        if message.index != self.diff_index:
            return
        diff = self.query_one(SideBySideDiff)
        diff.set_docs(message.left, message.right)
        m = diff.model
        stats = ""
        if m is not None and message.left.hash != message.right.hash:
            stats = (f"  [$text-success]+{m.added}[/] [$text-error]−{m.removed}[/]"
                     + (f" · sections: {', '.join(m.changed_sections)}" if m.changed_sections else "")
                     + (f" · [b $text-error]FROZEN changed: {', '.join(m.frozen_touched)}[/]"
                        if m.frozen_touched else " · FROZEN intact"))
        header = (f"[b]#{message.index}[/] {message.note}  [dim]{message.left.title} ⟷ {message.right.title}[/]"
                  + stats)
        self.query_one("#evo-diff-header", Static).update(Content.from_markup(header))

    # export ---------------------------------------------------------------------------------------

    def action_export_best(self) -> None:
        if self.run_id is not None:
            self.command("export best spec", ExportBest(self.run_id))

    # control ------------------------------------------------------------------------------------

    def action_new_run(self) -> None:
        from cambrian_tui.screens.new_evolution import NewEvolutionScreen

        def started(run_id: str | None) -> None:
            if run_id:
                self.app.notify(f"evolution {run_id} started (detached: it keeps running if you quit)",
                                title="evolution started", timeout=6)
                self.run_id = None  # select the new run once the list has it
                self._select_after_load = run_id
                self.reload()

        base = self.status.base.spec_hash if self.status else None
        self.app.push_screen(NewEvolutionScreen(default_spec=base), started)

    def _sync_bindings(self) -> None:
        st = self.status
        state = (st.engine_alive, st.state) if st else None
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "control":
            st = self.status
            return st is not None and bool(parameters) and st.can(str(parameters[0]))
        return True

    def action_control(self, action: str) -> None:
        if self.run_id is not None:
            self.command(f"evolution {action}", ControlEvolution(self.run_id, action))  # type: ignore[arg-type]

    def on_command_done(self, message: CommandDone) -> None:
        r = message.result
        if isinstance(r, ControlDone):
            self.app.notify(f"evolution {r.target}: {r.result}", timeout=4)
            self.reload()
        elif isinstance(r, BestExported):
            m = r.meta
            self.app.notify(f"{m['exported']['spec']}\n{_pct(m['viability_rate'])} with {m['model']} "
                            "(+ metadata .json)", title="best spec exported", timeout=8)
