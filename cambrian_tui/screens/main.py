"""Main screen: campaigns, the generation tree, the live rig log, fitness charts, status.

Live follow: the log shows the running generation and moves on to the next one as each
finishes, for as long as the campaign runs — until *you* move in the tree (a key or a
click), jump somewhere, or press ``l`` to come back. Reloads, reveals and tree rebuilds
never switch it off.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer

from cambrian_tui.keys import bindings
from cambrian_tui.messages import (
    CampaignsLoaded,
    CommandDone,
    GenerationChosen,
    GenerationHighlighted,
    JumpResolved,
    LineageLoaded,
    LogBatch,
    StatusLoaded,
    SummaryLoaded,
)
from cambrian_tui.nav import ShowCampaign, ShowGeneration, Target
from cambrian_tui.screens.base import CambrianScreen, LivenessCheck
from cambrian_tui.widgets.charts import FitnessCharts
from cambrian_tui.widgets.lineage_tree import GenerationTree
from cambrian_tui.widgets.log_view import LogView
from cambrian_tui.widgets.status_bar import StatusBar
from core.app.commands import ControlCampaign, ControlDone, Distill, Distilled
from core.app.models import CampaignView, LineageModel
from core.app.reads import pick_campaign

ALL = "__all__"


def short_campaign(cid: str, width: int = 15) -> str:
    """Campaign ids end in a unique suffix (c-YYYYMMDD-HHMMSS-xxxx): keep the end."""
    if len(cid) <= width:
        return cid
    return cid[:2] + "…" + cid[-(width - 3):]


class MainScreen(CambrianScreen):
    CSS_PATH = str(Path(__file__).with_name("main.tcss"))
    HELP_TITLE = "Campaigns"
    AUTO_FOCUS = "#gen-tree"
    BINDINGS = bindings("main")
    WATCH = frozenset({"campaigns", "generations", "llm", "leases", "logs", "specs"})
    # narrow: proportional columns shrink the campaign list; short: the charts give way to
    # their figures so the log keeps its lines
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.campaign_id: str | None = None
        self._distilling: str | None = None  # the campaign the distiller is reading, if any
        self.campaigns: list[CampaignView] = []
        self.lineage: LineageModel | None = None
        self.running_gen: int | None = None  # the newest generation in flight
        self.live_follow = True  # the log follows the running generation
        self.log_gen: int | None = None
        self.log_last_id = 0
        self._log_epoch = 0
        self._log_inflight = False
        self._log_again = False
        self._dirty = False
        self._liveness = LivenessCheck()
        self._lineage_sig: tuple | None = None
        self._summary_sig: tuple | None = None
        self._first_campaigns = True
        self._reveal_after_load: int | None = None
        self._select_pending: str | None = None
        self._views_timer = None
        self._binding_state: object = object()
        self._bindings_sync_pending = False
        self._views_for: object = object()  # campaign whose views were last requested
        self._table_sync: tuple[str, float] | None = None
        self._known_ids: set[str] | None = None
        self._wide_table = True  # campaigns listed before (None: not loaded yet)

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield DataTable(id="campaigns", cursor_type="row", zebra_stripes=False)
                yield GenerationTree(id="gen-tree")
            with Vertical(id="right"):
                yield LogView(id="log")
                yield FitnessCharts(id="charts")
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#campaigns", DataTable)
        table.border_title = "Campaigns"
        self._campaign_columns(wide=True)
        self.query_one("#gen-tree").border_title = "Generations"
        log = self.query_one(LogView)
        log.border_title = "Rig log"
        log.empty_text = "select a generation to see its rig log"
        self.query_one("#charts").border_title = "Fitness"
        if self.capp.live:
            self.set_interval(self.capp.refresh_interval, self._tick, name="main-refresh")
        self._bootstrap()

    # the campaign list: its columns follow its width ---------------------------------------------

    def _campaign_columns(self, wide: bool) -> None:
        table = self.query_one("#campaigns", DataTable)
        self._wide_table = wide
        table.clear(columns=True)
        table.add_column("campaign", key="id", width=15 if wide else 11)
        table.add_column("state", key="state", width=9)
        table.add_column("done", key="done", width=7 if wide else 5)
        if wide:
            table.add_column("viab", key="viab", width=4)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_campaign_table)

    def _fit_campaign_table(self) -> None:
        table = self.query_one("#campaigns", DataTable)
        wide = table.size.width >= 46
        if wide != self._wide_table and table.size.width:
            self._campaign_columns(wide)
            if self.campaigns:
                self.on_campaigns_loaded(CampaignsLoaded(self.campaigns))

    # footer: pause / resume / abort only where they apply -------------------------------------

    def _sync_bindings(self) -> None:
        """Refresh the footer only when pause/resume/abort applicability changes (a footer
        refresh rebuilds all its keys); coalesced, so a burst of changes costs one."""
        if not self._bindings_sync_pending:
            self._bindings_sync_pending = True
            self.call_later(self._sync_bindings_now)

    def _sync_bindings_now(self) -> None:
        self._bindings_sync_pending = False
        c = self.current_campaign()
        state = tuple(c.can(a) for a in ("pause", "resume", "abort")) if c is not None else None
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pause", "resume", "abort"):
            c = self.current_campaign()
            return c is not None and c.can(action)
        return True

    # loading -------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        """First load in one worker: campaigns, the one to attach to, then its lineage,
        status and summary — no round trip through the UI between them."""
        reads = self.reads
        target = self

        def boot():
            camps = reads.campaigns()
            pick = pick_campaign(camps)
            target.post_message(CampaignsLoaded(camps, select=pick or ALL))
            target.post_message(LineageLoaded(reads.lineage(pick)))
            target.post_message(StatusLoaded(reads.status(pick)))
            return SummaryLoaded(reads.summary(pick))

        self.background("bootstrap", boot)

    def reload_all(self) -> None:
        self._dirty = False
        self._liveness.reloaded()
        reads = self.reads
        self.background("campaigns", lambda: CampaignsLoaded(reads.campaigns()))
        self._load_campaign_views()

    def _load_campaign_views(self) -> None:
        cid = self.campaign_id
        lin_sig = self._lineage_sig
        sum_sig = self._summary_sig
        reads = self.reads

        def lineage():
            if lin_sig is not None and reads.generation_signature(cid) == lin_sig:
                return None
            return LineageLoaded(reads.lineage(cid))

        def summary():
            if sum_sig is not None and reads.summary_signature(cid) == sum_sig:
                return None
            return SummaryLoaded(reads.summary(cid))

        self.background("lineage", lineage)
        self.background("summary", summary)
        self.background("status", lambda: StatusLoaded(reads.status(cid)))

    def on_data(self, topics: frozenset[str]) -> None:
        if "logs" in topics:
            self._fetch_log(reset=False)
        if topics - {"logs"}:
            self._dirty = True
            if not self.capp.live:
                self.reload_all()

    def _tick(self) -> None:
        if not self.is_current:
            return
        if self._dirty or self._liveness.due(any(c.engine_alive for c in self.campaigns)):
            if self.lineage is None or self.lineage.campaign_id != self.campaign_id:
                return  # the views of this campaign are still loading
            self.reload_all()

    def action_refresh(self) -> None:
        self._lineage_sig = None
        self._summary_sig = None
        self.reload_all()
        self.notify("reloaded", timeout=1)

    # navigation targets ------------------------------------------------------------------------

    def navigate(self, target: Target) -> None:
        if isinstance(target, ShowCampaign):
            self.select_campaign(target.campaign_id)
            self.live_follow = True
        elif isinstance(target, ShowGeneration):
            self.jump_to_generation(target.number)

    # campaigns ------------------------------------------------------------------------------

    def on_campaigns_loaded(self, message: CampaignsLoaded) -> None:
        self.campaigns = message.campaigns
        table = self.query_one("#campaigns", DataTable)
        wide = self._wide_table
        rows = [(ALL, "(all)", "", "", "")[:5 if wide else 4]]
        for c in message.campaigns:
            viab = "-" if c.viability is None else f"{100 * c.viability:.0f}%"
            cells = (c.id, short_campaign(c.id, 15 if wide else 11), c.state_label, c.progress, viab)
            rows.append(cells[:5 if wide else 4])
        keys = [str(k.value) for k in table.rows]
        wanted = [r[0] for r in rows]
        if keys == wanted:
            for key, *cells in rows:
                old = table.get_row(key)
                for col, value, before in zip(("id", "state", "done", "viab"), cells, old):
                    if value != before:
                        table.update_cell(key, col, value)
            current = None
        else:
            current = self.campaign_id or ALL
            table.clear()
            for key, *cells in rows:
                table.add_row(*cells, key=key)
            if self._first_campaigns and message.select is not None:
                # attach to what is running, else the newest campaign (the bootstrap
                # worker is loading its views already)
                current = message.select
                self.campaign_id = None if current == ALL else current
                self._views_for = self.campaign_id
        if self._select_pending in wanted:
            current = self._select_pending
            self._select_pending = None
        elif self._should_attach(message.campaigns):
            current = self._should_attach(message.campaigns)
            self.notify(f"attached to {current}: it started while you watched a finished campaign",
                        timeout=5)
        self._known_ids = {c.id for c in message.campaigns}
        if current is not None and current in wanted:
            # A rebuilt table first highlights row 0, then the row we move to: ignore the
            # transient events so they do not switch the campaign back and forth (which
            # could drop the views being loaded for the right one).
            self._table_sync = (current, time.monotonic() + 1.0)
            table.move_cursor(row=wanted.index(current), animate=False)
            if current != (self.campaign_id or ALL):
                self._switch_campaign(None if current == ALL else current)
        self._first_campaigns = False
        self._sync_bindings()
        self._update_log_title()  # "live" depends on the campaign's state too
        table.border_title = f"Campaigns ({len(message.campaigns)})"

    def _should_attach(self, campaigns: list[CampaignView]) -> str | None:
        """A campaign that started elsewhere (CLI, another TUI) while this screen follows one
        that is over: live follow moves to it, as start-up attaches to what runs."""
        if self._known_ids is None or not self.live_follow or self.capp.starting:
            return None  # (a start from this TUI shows its campaign itself)
        current = self.current_campaign()
        if current is not None and current.live:
            return None
        fresh = [c for c in campaigns if c.id not in self._known_ids and c.live and not c.evolution_child]
        return fresh[0].id if fresh else None

    @on(DataTable.RowHighlighted, "#campaigns")
    def _campaign_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else ALL
        if self._table_sync is not None:
            wanted, deadline = self._table_sync
            if key != wanted and time.monotonic() < deadline:
                return
            self._table_sync = None
        self._switch_campaign(None if key == ALL else str(key))

    def _switch_campaign(self, cid: str | None) -> None:
        if cid == self.campaign_id:
            return
        self.campaign_id = cid
        self.live_follow = True  # a campaign you pick: watch what it runs
        self._sync_bindings()
        self._request_views(cid)

    def _request_views(self, cid: str | None) -> None:
        """Debounced: scrolling through the list (or a table rebuild) loads only the
        campaign the cursor settles on, and nothing that is already loading."""
        if self._views_timer is not None:
            self._views_timer.stop()
        self._views_timer = self.set_timer(0.06, lambda: self._views_now(cid))

    def _views_now(self, cid: str | None) -> None:
        self._views_timer = None
        if cid != self.campaign_id or cid == self._views_for:
            return
        self._views_for = cid
        self._lineage_sig = None
        self._summary_sig = None
        self._load_campaign_views()

    @on(DataTable.RowSelected, "#campaigns")
    def _campaign_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one(GenerationTree).focus()

    def select_campaign(self, campaign_id: str | None) -> None:
        """Show a campaign (None: all generations); waits for it if not listed yet."""
        table = self.query_one("#campaigns", DataTable)
        key = campaign_id or ALL
        keys = [str(k.value) for k in table.rows]
        if key in keys:
            table.move_cursor(row=keys.index(key), animate=False)
        else:
            self._select_pending = key
            self.reload_all()

    def current_campaign(self) -> CampaignView | None:
        return next((c for c in self.campaigns if c.id == self.campaign_id), None)

    # lineage ----------------------------------------------------------------------------

    def on_lineage_loaded(self, message: LineageLoaded) -> None:
        model = message.model
        if model.campaign_id != self.campaign_id:
            return
        tree = self.query_one(GenerationTree)
        self.lineage = model
        self._lineage_sig = model.signature
        running = model.running
        self.running_gen = running[-1] if running else None
        tree.set_model(model)
        c = model.counts
        parts = [f"{len(model.numbers) - len(model.bred)}"]  # the campaign's own; bred ones after
        for key, glyph in (("promoted", "✓"), ("failed", "✗"), ("timeout", "⏱"), ("interrupted", "⊘")):
            if c.get(key):
                parts.append(f"{glyph}{c[key]}")
        if running:
            parts.append(f"●{len(running)}")
        if model.bred:
            parts.append(f"+{len(model.bred)}✿")
        tree.border_title = "Generations " + " ".join(parts)
        tree.border_subtitle = "" if model.numbers else "n: start a campaign"
        pending = self._reveal_after_load
        if pending is not None and pending in model.parent:
            self._reveal_after_load = None
            self.live_follow = False
            tree.reveal(pending)
            tree.focus()
            self._show_log(pending)
            return
        if self.live_follow:
            target = self._live_target(model)
            if target is not None:
                tree.reveal(target)
                self._show_log(target)
                return
        if self.log_gen is None or self.log_gen not in model.parent:
            target = tree.selected_generation
            if target is None and model.numbers:
                target = model.numbers[-1]
            if target is not None:
                self._show_log(target)
        else:
            self._update_log_title()

    def _live_target(self, model: LineageModel) -> int | None:
        """What live follow shows: the generation it shows while that one still runs, else
        the newest in flight, else (nothing runs) the last one it showed, else the newest."""
        running = model.running
        if self.log_gen in running:
            return self.log_gen
        if running:
            return running[-1]
        if self.log_gen is not None and self.log_gen in model.parent:
            return self.log_gen
        return model.numbers[-1] if model.numbers else None

    def on_generation_highlighted(self, message: GenerationHighlighted) -> None:
        if not message.by_user:
            return  # the tree moved its own cursor (rebuild, reveal): follow is unaffected
        self.live_follow = False
        self._show_log(message.number)
        self._update_log_title()

    def on_generation_chosen(self, message: GenerationChosen) -> None:
        self.open_inspector(message.number)

    def open_inspector(self, number: int) -> None:
        from cambrian_tui.screens.inspector import InspectorScreen

        self.app.push_screen(InspectorScreen(number, campaign_id=self.campaign_id))

    # log -------------------------------------------------------------------------------------

    def _show_log(self, n: int) -> None:
        if n == self.log_gen:
            self._update_log_title()
            return
        self.log_gen = n
        self.log_last_id = 0
        self._log_epoch += 1
        log = self.query_one(LogView)
        log.clear()
        log.follow = True
        log.empty_text = "no rig output for this generation yet"
        self._update_log_title()
        self._log_inflight = False
        self._fetch_log(reset=True)

    def _fetch_log(self, reset: bool) -> None:
        n = self.log_gen
        if n is None:
            return
        if self._log_inflight and not reset:
            self._log_again = True
            return
        self._log_inflight = True
        self._log_again = False
        after = 0 if reset else self.log_last_id
        epoch = self._log_epoch
        reads = self.reads

        def fetch():
            lines, last = reads.log_tail(n, after_id=after)
            return LogBatch(n, lines, last, reset, epoch)

        self.background("log", fetch, group=f"log-{epoch}", exclusive=False)

    def on_log_batch(self, message: LogBatch) -> None:
        if message.epoch != self._log_epoch or message.generation != self.log_gen:
            return
        self._log_inflight = False
        log = self.query_one(LogView)
        if message.reset:
            log.set_lines(message.lines)
        else:
            log.append(message.lines)
        self.log_last_id = max(self.log_last_id, message.last_id)
        self._update_log_title()
        if self._log_again:
            self._fetch_log(reset=False)

    def _update_log_title(self) -> None:
        log = self.query_one(LogView)
        n = self.log_gen
        if n is None:
            log.border_title = "Rig log"
            log.border_subtitle = ""
            return
        running = self.lineage is not None and n in self.lineage.running
        if self.live_follow:
            c = self.current_campaign()
            mode = ("live ●" if running else "live · waiting for the next" if c is None or c.live
                    else f"last ({c.state})")
        else:
            mode = f"pinned ({self.capp.key_label('main.live')}: live)"
        log.border_title = f"Rig log — #{n} · {mode}"
        tail = "tail" if log.follow else (f"held (+{log.unseen} new)" if log.unseen else "held")
        log.border_subtitle = f"{log.line_count} lines · {tail}"

    def action_toggle_follow(self) -> None:
        log = self.query_one(LogView)
        log.follow = not log.follow
        self._update_log_title()

    def action_live(self) -> None:
        self.live_follow = True
        target = self._live_target(self.lineage) if self.lineage is not None else None
        if target is None:
            self.notify("nothing has run in this campaign yet", timeout=2)
            return
        self.query_one(GenerationTree).reveal(target)
        self._show_log(target)
        if self.running_gen is None:
            self.notify("nothing is running now: the log moves on when the next generation starts", timeout=3)

    # navigation ------------------------------------------------------------------------------

    def action_inspect(self) -> None:
        n = self.query_one(GenerationTree).selected_generation or self.log_gen
        if n is None:
            self.notify("no generation selected", severity="warning", timeout=2)
            return
        self.open_inspector(n)

    def _jump_failed(self, direction: int) -> None:
        tree = self.query_one(GenerationTree)
        failed = self.lineage.failed if self.lineage is not None else []
        if not failed:
            self.notify("no failed generations here", timeout=2)
            return
        cur = tree.selected_generation
        if cur is None:
            target = failed[0] if direction > 0 else failed[-1]
        elif direction > 0:
            target = next((n for n in failed if n > cur), failed[0])
        else:
            target = next((n for n in reversed(failed) if n < cur), failed[-1])
        self._go_to(target)

    def _go_to(self, n: int) -> None:
        """The user went to generation n: follow stops, the log and the tree show n."""
        self.live_follow = False
        tree = self.query_one(GenerationTree)
        tree.reveal(n)
        tree.focus()
        self._show_log(n)

    def action_next_failed(self) -> None:
        self._jump_failed(+1)

    def action_prev_failed(self) -> None:
        self._jump_failed(-1)

    def jump_to_generation(self, n: int) -> None:
        """Select generation n (switching to its campaign or 'all' if needed)."""
        if self.lineage is not None and n in self.lineage.parent:
            self._go_to(n)
            return
        reads = self.reads
        self.background("jump", lambda: JumpResolved(n, reads.generation_campaign(n)))

    def on_jump_resolved(self, message: JumpResolved) -> None:
        table = self.query_one("#campaigns", DataTable)
        key = message.campaign_id or ALL
        keys = [str(k.value) for k in table.rows]
        if key not in keys:
            key = ALL
        self._reveal_after_load = message.number  # the lineage of that campaign arrives later
        cid = None if key == ALL else key
        if cid == self.campaign_id:  # its lineage is loaded but did not have n yet: reload it
            self._lineage_sig = None
            self._load_campaign_views()
        table.move_cursor(row=keys.index(key), animate=False)
        self._switch_campaign(cid)
        self.live_follow = False

    def action_goto(self) -> None:
        from cambrian_tui.screens.dialogs import JumpDialog

        def done(n: int | None) -> None:
            if n is not None:
                self.jump_to_generation(n)

        self.app.push_screen(JumpDialog(), done)

    def action_search(self) -> None:
        self.capp.action_search()

    def action_cycle_chart(self) -> None:
        self.query_one(FitnessCharts).cycle()

    # campaign control ------------------------------------------------------------------------

    def action_new_campaign(self) -> None:
        self.capp.action_new_campaign()

    def _control(self, action: str) -> None:
        c = self.current_campaign()
        if c is None:
            self.notify("select a campaign first", severity="warning", timeout=2)
            return
        if not c.can(action):
            self.notify(f"campaign {c.id} is {c.state}; nothing to {action}", severity="warning", timeout=3)
            return
        self.command(f"{action} {c.id}", ControlCampaign(c.id, action))  # type: ignore[arg-type]

    def on_command_done(self, message: CommandDone) -> None:
        r = message.result
        if isinstance(r, ControlDone):
            what = {"restarted": "engine restarted for", "resumed": "resume sent to"}.get(r.result)
            self.notify(f"{what} {r.target}" if what else f"{r.target}: {r.result}", timeout=3)
            self._dirty = True
            if not self.capp.live:
                self.reload_all()
        elif isinstance(r, Distilled):
            self._distilling = None
            self._report_distilled(r)

    def on_command_failed(self, message) -> None:
        if isinstance(message.command, Distill):
            self._distilling = None
        super().on_command_failed(message)

    def action_pause(self) -> None:
        self._control("pause")

    def action_resume(self) -> None:
        self._control("resume")

    def action_abort(self) -> None:
        c = self.current_campaign()
        if c is None or not c.can("abort"):
            self._control("abort")
            return
        from cambrian_tui.screens.dialogs import ConfirmDialog

        def done(ok: bool | None) -> None:
            if ok:
                self._control("abort")

        self.app.push_screen(ConfirmDialog(f"Abort campaign {c.id}?",
                                           "Running generations are interrupted; the record is kept."), done)

    def action_distill(self) -> None:
        c = self.current_campaign()
        if c is None:
            self.notify("select a campaign first (1 focuses the list)", severity="warning", timeout=3)
            return
        if self._distilling:
            self.notify(f"still distilling {self._distilling}", severity="warning", timeout=3)
            return
        self._distilling = c.id
        note = " (still running: only the generations judged so far)" if c.live else ""
        self.notify(f"distilling {c.id}{note}…", timeout=3)
        self.command(f"distill {c.id}", Distill(c.id))

    def _report_distilled(self, m: Distilled) -> None:
        if m.proposed:
            # straight to the review: the new proposals, with their evidence
            from cambrian_tui.nav import ShowAmendments

            self.notify(f"{m.headline}. Review them here: a accept, e edit, r reject; after accepting, "
                        "c runs a confirmation campaign", title=f"distilled {m.campaign_id}", timeout=12)
            self.capp.navigate(ShowAmendments(m.proposal_ids))
            return
        self.notify(m.headline or f"no new amendment from {m.analysed} generations",
                    title=f"distilled {m.campaign_id}", severity="warning" if not m.analysed else "information",
                    timeout=15)

    # summary, status --------------------------------------------------------------------------

    def on_summary_loaded(self, message: SummaryLoaded) -> None:
        if message.summary.campaign_id != self.campaign_id:
            return
        self._summary_sig = message.summary.signature
        self.query_one(FitnessCharts).update_summary(message.summary)

    def on_status_loaded(self, message: StatusLoaded) -> None:
        self.query_one(StatusBar).update_status(message.status)
