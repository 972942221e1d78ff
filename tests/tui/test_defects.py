"""Pilot tests for the defects a new user hit (issue 20), each at 120x36 and at 80x24.

No engine and no Docker: a campaign is written into the store step by step exactly as the
engine writes it (the same Store calls, a lease held by this process), so the TUI sees what
it would see from a detached engine — only faster and deterministic.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from textual.widgets import DataTable, Footer, Input, Select, Static

from cambrian_tui.nav import ShowSpec
from cambrian_tui.screens.amendments import AmendmentsScreen
from cambrian_tui.screens.inspector import InspectorScreen
from cambrian_tui.screens.new_campaign import NewCampaignScreen
from cambrian_tui.screens.new_evolution import NewEvolutionScreen
from cambrian_tui.screens.spec import SpecScreen
from cambrian_tui.widgets.charts import FitnessCharts, PlotextPlot, int_ticks
from cambrian_tui.widgets.lineage_tree import GenerationTree
from cambrian_tui.widgets.log_view import LogView
from cambrian_tui.widgets.status_bar import StatusBar
from core.home import REPO_ROOT, db_path
from core.models import LLMCall
from core.store import Store
from tests.tui.conftest import settle
from tests.tui.pilot import SIZES, make_app, plain, until
from tests.tui.seed import SPEC_V1, SPEC_V3, _report

pytestmark = pytest.mark.timeout(180)


class ScriptedCampaign:
    """Writes a campaign the way the engine does: in_progress rows, log chunks, a report,
    then promoted or failed; a lease held by this (live) process."""

    def __init__(self, home: Path, cid: str, n: int):
        self.home, self.cid, self.n = home, cid, n
        with self.store() as st:
            self.spec = st.add_spec(SPEC_V1, label="tally").hash
            st.create_campaign(cid, self.spec, {"spec_hash": self.spec, "generations": n, "parallelism": 2,
                                                "provider": "sim", "model": "sim-1"})
            st.acquire_lease(cid, pid=os.getpid())
            st.set_campaign_state(cid, "running")

    def store(self) -> Store:
        return Store.open(db_path(self.home))

    def start(self) -> int:
        with self.store() as st:
            g = st.create_generation(spec_hash=self.spec, campaign_id=self.cid)
            st.append_log(g.number, "rig", [f"[rig] generation {g.number}: fresh container"])
            st.heartbeat(self.cid, pid=os.getpid())
            return g.number

    def log(self, n: int, text: str) -> None:
        with self.store() as st:
            st.append_log(n, "stdout", [text])

    def finish(self, n: int, ok: bool) -> None:
        with self.store() as st:
            st.record_llm_call(LLMCall(generation=n, campaign_id=self.cid, provider="sim", model="sim-1",
                                       input_tokens=100, output_tokens=50, simulated=True))
            st.record_report(n, _report(n, None if ok else "test"))
            st.set_outcome(n, "promoted" if ok else "failed", reason=None if ok else "non-viable at test")

    def complete(self) -> None:
        with self.store() as st:
            st.set_campaign_state(self.cid, "completed", f"{self.n} generations")
            st.release_lease(self.cid, pid=os.getpid())


# --- 1. live follow through a whole campaign ----------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_follow_stays_live_through_a_whole_campaign(tmp_path, empty_spec_dir, size):
    """Ten generations, two at a time, no key pressed: the log always shows a generation in
    flight, says "live", and moves on as each one finishes — to the end of the campaign."""
    home = tmp_path / "home"
    camp = ScriptedCampaign(home, "c-follow", 10)
    app = make_app(home, empty_spec_dir, live=True, poll_interval=0.03, refresh_interval=0.1)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.screen
        log = main.query_one(LogView)
        running = [camp.start(), camp.start()]
        shown = []
        for step in range(10):
            await until(pilot, lambda: main.lineage is not None and main.lineage.running == running,
                        f"the tree to show {running} running")
            await until(pilot, lambda: main.log_gen in running, f"the log to show one of {running}")
            assert main.live_follow
            title = str(log.border_title)
            assert f"#{main.log_gen} · live ●" in title, title
            camp.log(main.log_gen, f"step {step}")
            await until(pilot, lambda: any(f"step {step}" in t for _, t in log.lines()), "the new log line")
            shown.append(main.log_gen)
            done = running.pop(0)
            camp.finish(done, ok=step % 3 != 1)
            if step < 8:
                running.append(camp.start())
        camp.complete()
        await until(pilot, lambda: main.current_campaign() is not None
                    and main.current_campaign().state == "completed", "the campaign to complete")
        await until(pilot, lambda: main.lineage is not None and not main.lineage.running, "nothing running")
        assert main.live_follow and main.log_gen == shown[-1]
        # still following, not pinned: the title says the campaign has ended
        assert str(log.border_title).endswith("last (completed)") and "pinned" not in str(log.border_title)
        assert len(set(shown)) >= 5  # it moved on, generation after generation
        # the tree was rebuilt many times under it: follow never switched itself off
        assert main.query_one(GenerationTree).model.numbers == list(range(10))


@pytest.mark.parametrize("size", SIZES)
async def test_only_your_own_navigation_leaves_follow_and_l_returns(tmp_path, empty_spec_dir, size):
    home = tmp_path / "home"
    camp = ScriptedCampaign(home, "c-nav", 4)
    first = camp.start()
    camp.finish(first, ok=True)
    live = camp.start()
    app = make_app(home, empty_spec_dir, live=True, poll_interval=0.03, refresh_interval=0.1)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.screen
        await until(pilot, lambda: main.log_gen == live, "the live generation")
        assert main.live_follow
        tree = main.query_one(GenerationTree)
        tree.focus()
        await pilot.press("up")  # the user moves in the tree
        await settle(pilot, 2)
        assert not main.live_follow and main.log_gen == tree.selected_generation != live
        assert "pinned" in str(main.query_one(LogView).border_title)
        nxt = camp.start()  # a new generation starts: a pinned log stays where the user put it
        await until(pilot, lambda: main.lineage is not None and nxt in main.lineage.running, "the next one")
        assert main.log_gen != nxt and not main.live_follow
        await pilot.press("l")
        await settle(pilot, 2)
        assert main.live_follow and main.log_gen in main.lineage.running


# --- 2. a spec version stored while the TUI runs ----------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_a_spec_version_stored_while_the_app_runs_appears_in_f3(seeded, empty_spec_dir, size):
    home, facts = seeded
    app = make_app(home, empty_spec_dir, live=True, poll_interval=0.03, refresh_interval=0.1)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        spec = app.screen
        assert isinstance(spec, SpecScreen) and len(spec.versions) == 3
        # stored while F3 is on screen (an accepted amendment, say)
        with Store.open(db_path(home)) as st:
            v4 = st.add_spec(SPEC_V3 + "\nOne more line.\n", parent_hash=facts["v3"], origin="amendment",
                             label="tally-v4").hash
        await until(pilot, lambda: v4 in spec.by_hash, "v4 in the Specs screen")
        assert "tally-v4" in str(spec.query_one("#spec-tree").border_title) or len(spec.versions) == 4
        # stored while another screen is on top (an evolution's variant): there when you come back
        await pilot.press("f2")
        await settle(pilot)
        with Store.open(db_path(home)) as st:
            v5 = st.add_spec(SPEC_V3 + "\nA mutant line.\n", parent_hash=facts["v3"], origin="mutation",
                             label="tally-v5").hash
        await asyncio.sleep(0.3)
        await pilot.press("f3")
        await until(pilot, lambda: v5 in spec.by_hash, "v5 in the Specs screen")
        assert len(spec.versions) == 5
        # opened from elsewhere (evolution's `o`, the palette): shown against its parent
        with Store.open(db_path(home)) as st:
            v6 = st.add_spec(SPEC_V3 + "\nYet another.\n", parent_hash=v5, origin="mutation").hash
        app.navigate(ShowSpec(v6))
        await until(pilot, lambda: spec.b == v6, "v6 as B")
        assert spec.a == v5
        await until(pilot, lambda: "same version" not in plain(spec.query_one("#diff-header")), "the diff header")
        assert "+1" in plain(spec.query_one("#diff-header"))


# --- 4. forms refuse bad input at the field ------------------------------------------------------------


async def open_form(pilot, key: str = "n"):
    await pilot.press(key)
    await settle(pilot)
    return pilot.app.screen


def refuse_starts(monkeypatch) -> list:
    """Record start commands instead of spawning (test_e2e starts real ones)."""
    from core.app import commands

    seen: list = []
    for kind in (commands.StartCampaign, commands.StartEvolution):
        monkeypatch.setitem(commands.HANDLERS, kind, lambda app, cmd: seen.append(cmd) or (_ for _ in ()).throw(
            commands.CommandRefused("recorded, not started")))
    return seen


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key, raw, message", [
    ("generations", "", "required: a whole number (1–100000)"),
    ("generations", "abc", "not a whole number: 'abc'"),
    ("generations", "2x", "not a whole number: '2x'"),
    ("seed", "1.5", "not a whole number: '1.5'"),
    ("parallelism", "-10", "must be at least 1"),
])
async def test_the_campaign_form_refuses_bad_numbers_at_the_field(seeded, empty_spec_dir, monkeypatch, size,
                                                                  key, raw, message):
    home, _ = seeded
    seen = refuse_starts(monkeypatch)
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        assert isinstance(form, NewCampaignScreen)
        field = form.query_one(f"#nc-{key}", Input)
        field.focus()
        field.value = ""
        await pilot.press(*raw) if raw else None  # typed, key by key: nothing is dropped
        await settle(pilot, 1)
        assert field.value == raw
        await pilot.press("ctrl+s")
        await settle(pilot, 1)
        assert field.border_subtitle == message and field.has_class("-error")
        assert message in plain(form.query_one("#nc-error", Static))
        assert seen == [] and isinstance(app.screen, NewCampaignScreen)


@pytest.mark.parametrize("size", SIZES)
async def test_an_evolution_budget_too_small_for_the_design_is_refused(seeded, empty_spec_dir, monkeypatch, size):
    home, _ = seeded
    seen = refuse_starts(monkeypatch)
    app = make_app(home, empty_spec_dir, initial_mode="evolution")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        assert isinstance(form, NewEvolutionScreen)
        form.query_one("#nc-budget_generations", Input).value = "1"
        await pilot.press("ctrl+s")
        await settle(pilot, 1)
        msg = form.query_one("#nc-budget_generations", Input).border_subtitle
        assert "too small for this design" in msg and "give at least 16" in msg
        assert seen == []


@pytest.mark.parametrize("size", SIZES)
async def test_the_spec_chooser_marks_broken_files_and_takes_a_typed_path(seeded, tmp_path, monkeypatch, size):
    home, facts = seeded
    specs = tmp_path / "spec"
    specs.mkdir()
    (specs / "echo.md").write_bytes((REPO_ROOT / "spec" / "echo.md").read_bytes())
    (specs / "dropped.md").write_text("# a note someone dropped here\n")
    seen = refuse_starts(monkeypatch)
    app = make_app(home, specs)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await settle(pilot)
        sel = form.query_one("#nc-spec", Select)
        labels = {c.title: c.label for c in form.choices}
        assert labels["echo"].endswith(")") and "(shipped," in labels["echo"]
        assert labels["dropped"].startswith("✗") and "fails spec check" in labels["dropped"]
        assert Select.NULL not in [v for _, v in sel._options]  # nothing to wrap onto
        sel.value = next(c.key for c in form.choices if c.title == "dropped")
        await settle(pilot, 1)
        await pilot.press("ctrl+s")
        await settle(pilot, 1)
        assert "fails spec check" in form.errors["spec"] and seen == []
        # a typed path wins over the list
        form.query_one("#nc-spec_path", Input).value = str(REPO_ROOT / "spec" / "prime.md")
        await pilot.press("ctrl+s")
        await settle(pilot, 2)
        assert seen and seen[-1].spec.path == str(REPO_ROOT / "spec" / "prime.md")


async def test_the_form_does_not_default_to_an_evolutions_mutant(seeded, empty_spec_dir):
    home, facts = seeded
    with Store.open(db_path(home)) as st:
        mutant = st.add_spec(SPEC_V3 + "\nmutated\n", parent_hash=facts["v3"], origin="mutation").hash
        st.create_campaign("e-run-o0001-f", mutant, {"generations": 2}, kind="evolution-campaign")
        st.set_campaign_state("e-run-o0001-f", "completed")
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.screen.select_campaign("e-run-o0001-f")
        await settle(pilot)
        form = await open_form(pilot)
        await settle(pilot)
        chosen = form.chosen()
        assert chosen is not None and chosen.hash != mutant and chosen.origin == "human"


@pytest.mark.parametrize("size", SIZES)
async def test_a_rig_that_cannot_judge_is_said_in_the_form_not_in_a_toast(seeded, empty_spec_dir, monkeypatch,
                                                                          size):
    home, _ = seeded
    monkeypatch.setenv("DOCKER_HOST", f"unix://{home}/no-docker.sock")
    app = make_app(home, empty_spec_dir)
    toasts: list = []
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        real_notify = app.notify
        app.notify = lambda *a, **k: (toasts.append((a, k)), real_notify(*a, **k))  # type: ignore[method-assign]
        form = await open_form(pilot)
        await settle(pilot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: plain(form.query_one("#nc-error", Static)), "the refusal")
        await settle(pilot, 2)
        assert "docker" in plain(form.query_one("#nc-error", Static)).lower()
        assert toasts == [] and isinstance(app.screen, NewCampaignScreen)
        assert not form.query_one("#nc-start").disabled  # fix it and try again
    with Store.open(db_path(home)) as st:
        assert [c["id"] for c in st.campaigns()] == ["c-tally-002", "c-tally-001"]


# --- 5. small terminals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_the_main_screen_keeps_its_log_footer_and_status_usable(seeded, empty_spec_dir, size):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.screen
        log = main.query_one(LogView)
        assert log.size.height >= 10 and log.size.width >= 40
        footer = main.query_one(Footer)
        keys = [k for k in footer.query("FooterKey")]
        assert [k.action for k in keys[:2]] == ["help", "quit"]  # first, whatever the width
        assert not any("-command-palette" in k.classes for k in keys)  # no docked key to collide
        bar = main.query_one(StatusBar)
        text = plain(bar)
        assert len(text) <= bar.content_region.width
        full = "  ".join(p.plain for _, p in bar.parts() if p.plain)
        # whole parts only: what is shown is a prefix of the parts, cut at a part's end or with "…"
        assert full.startswith(text.rstrip("…").rstrip()) and (text == full or text.endswith("…")
                                                                or full[len(text):].startswith("  "))


@pytest.mark.parametrize("size", [(60, 15), (69, 30), (100, 17)])
async def test_a_terminal_below_the_minimum_says_so(seeded, empty_spec_dir, size):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        notice = app.screen.query_one("#too-small", Static)
        assert notice.display and f"{size[0]}×{size[1]}" in plain(notice) and "needs 70×18" in plain(notice)
        assert not app.screen.query_one("#body").display
        await pilot.resize_terminal(120, 36)
        await settle(pilot, 2)
        assert not notice.display and app.screen.query_one("#body").display


@pytest.mark.parametrize("size", SIZES)
async def test_the_inspectors_columns_follow_the_width(seeded, empty_spec_dir, size):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        target = next(n for n in facts["failed"] if app.cam.reads.generation_detail(n).failure_stage == "test")
        app.screen.open_inspector(target)
        await settle(pilot)
        insp = app.screen
        assert isinstance(insp, InspectorScreen)
        table = insp.query_one("#checks", DataTable)
        widths = [c.width for c in table.columns.values()]
        assert sum(widths) + 2 * len(widths) <= table.size.width  # nothing runs off the edge
        row = next(i for i, r in enumerate(insp.rows) if r.kind == "test")
        detail = str(table.get_row_at(row)[3])
        assert detail.startswith("AssertionError")  # the reason first, the location in the panel


def test_chart_ticks_thin_out_on_a_narrow_plot():
    class Plt:
        def xticks(self, ticks, labels):
            self.ticks, self.labels = ticks, labels

    for width, most in ((30, 3), (48, 5), (120, 6)):
        plt = Plt()
        int_ticks(plt, list(range(0, 400)), width)
        assert len(plt.ticks) <= most
        room = width - 8
        assert sum(len(label) + 1 for label in plt.labels) <= room


# --- 6. the inspector, the tree and figures that agree ------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_a_failed_vector_is_listed_once_with_the_body_that_explains_it(tmp_path, empty_spec_dir, size):
    home = tmp_path / "home"
    with Store.open(db_path(home)) as st:
        h = st.add_spec(SPEC_V1, label="t").hash
        st.create_campaign("c-v", h, {"generations": 1, "provider": "sim"})
        g = st.create_generation(spec_hash=h, campaign_id="c-v")
        rep = _report(g.number, "health")
        rep["checks"]["health"]["vectors"][0].update(status=200, body_excerpt='{"status": "starting"}',
                                                     error="body_contains: status is 'starting', not 'ok'")
        rep["diagnostics"]["failures"] = [{"test": "vector:health-ok", "error": "body_contains: status is "
                                                                               "'starting', not 'ok'"}]
        st.record_report(g.number, rep)
        st.set_outcome(g.number, "failed", reason="non-viable at health")
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.screen.open_inspector(g.number)
        await settle(pilot)
        insp = app.screen
        vec_rows = [r for r in insp.rows if "health-ok" in r.name]
        assert len(vec_rows) == 1 and vec_rows[0].failed
        table = insp.query_one("#checks", DataTable)
        table.move_cursor(row=insp.rows.index(vec_rows[0]))
        await settle(pilot, 1)
        detail = plain(insp.query_one("#check-detail", Static))
        assert "response body" in detail and '{"status": "starting"}' in detail


@pytest.mark.parametrize("size", SIZES)
async def test_running_generations_are_never_hidden_in_a_collapsed_node(seeded, empty_spec_dir, size):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.screen
        tree = main.query_one(GenerationTree)
        running = facts["in_progress"]
        assert running in main.lineage.running and main.lineage.parent[running] is not None
        node = tree._gen_nodes.get(running)
        assert node is not None
        parent = node.parent
        while parent is not None and parent is not tree.root:
            assert parent.is_expanded
            parent = parent.parent
        assert "●1" in str(tree.border_title)


@pytest.mark.parametrize("size", SIZES)
async def test_figures_agree_between_panes_and_with_json(tmp_path, empty_spec_dir, size):
    """An aborted campaign with interrupted generations and every failure stage: the list,
    the Fitness headline and `campaign status --json` tell the same story."""
    from core.app import Cambrian

    home = tmp_path / "home"
    with Store.open(db_path(home)) as st:
        h = st.add_spec(SPEC_V1).hash
        st.create_campaign("c-fig", h, {"generations": 6, "provider": "sim"})
        st.set_campaign_state("c-fig", "running")
        for stage in ("start", "start", "health", "test", "build", None):
            g = st.create_generation(spec_hash=h, campaign_id="c-fig")
            st.record_report(g.number, _report(g.number, stage))
            st.set_outcome(g.number, "promoted" if stage is None else "failed")
        g = st.create_generation(spec_hash=h, campaign_id="c-fig")
        st.set_outcome(g.number, "interrupted", "aborted")
        st.set_campaign_state("c-fig", "paused", "paused by user")
        st.set_campaign_state("c-fig", "aborted", "aborted by user")
    with Cambrian(home) as cam:
        js = cam.reads.campaign_status("c-fig")
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.screen
        assert main.campaign_id == "c-fig"
        row = main.query_one("#campaigns", DataTable).get_row("c-fig")
        headline = plain(main.query_one(FitnessCharts).query_one("#headline"))
        assert row[2] == js["progress"] == "6/6"
        assert f"{js['progress']} done" in headline
        for stage, count in js["summary"]["failure_stages"].items():
            assert f"{stage} {count}" in headline  # every stage, build included
        assert "aborted by user" in plain(main.query_one(StatusBar)) or size[0] < 100


async def test_a_resumed_campaign_no_longer_says_it_was_paused(seeded, empty_spec_dir):
    home, facts = seeded
    cid = facts["running_campaign"]
    with Store.open(db_path(home)) as st:
        st.set_campaign_state(cid, "paused", "paused by user")
        st.set_campaign_state(cid, "running")  # the engine resumed
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.screen.campaign_id == cid
        assert "paused by user" not in plain(app.screen.query_one(StatusBar))


@pytest.mark.parametrize("size", SIZES)
async def test_a_free_campaigns_cost_chart_has_no_negative_axis(tmp_path, empty_spec_dir, size):
    home = tmp_path / "home"
    camp = ScriptedCampaign(home, "c-free", 3)
    for _ in range(3):
        camp.finish(camp.start(), ok=True)  # sim: every call costs $0
    camp.complete()
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        plot = app.screen.query_one("#plot-cost", PlotextPlot)
        plot.plt.plotsize(60, 15)
        text = re.sub(r"\x1b\[[0-9;]*m", "", plot.plt.build())
        labels = [line.split("┤")[0].strip() for line in text.splitlines() if "┤" in line]
        numbers = [float(x) for x in labels if x.replace(".", "", 1).replace("-", "", 1).isdigit()]
        assert numbers and min(numbers) >= 0


@pytest.mark.parametrize("size", SIZES)
async def test_the_amendments_preview_hint_does_not_borrow_the_accept_key(seeded, empty_spec_dir, size):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AmendmentsScreen)
        diff = screen.query_one("#amend-diff")
        assert "(a / b)" not in diff.empty_text and "select an amendment" in diff.empty_text
