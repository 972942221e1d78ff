"""Pilot tests of the TUI flows on seeded databases (no engine, no Docker)."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import DataTable, OptionList, Static, TabbedContent

from cambrian_tui.app import CambrianApp
from cambrian_tui.screens.help import HelpScreen
from cambrian_tui.screens.inspector import InspectorScreen
from cambrian_tui.screens.main import MainScreen
from cambrian_tui.screens.spec import SpecScreen
from cambrian_tui.widgets.lineage_tree import GenerationTree, PageNode
from cambrian_tui.widgets.log_view import LogView
from cambrian_tui.widgets.side_diff import SideBySideDiff
from cambrian_tui.widgets.status_bar import StatusBar
from core.home import db_path
from core.store import Store
from tests.tui.conftest import SIZE, settle

pytestmark = pytest.mark.timeout(120)


def make_app(home, spec_dir, **kw) -> CambrianApp:
    kw.setdefault("live", False)
    return CambrianApp(home, spec_dir=spec_dir, theme="textual-dark", show_home=False, **kw)


def plain(widget: Static) -> str:
    return str(widget.render())


async def select_campaign(pilot, cid: str) -> None:
    main = pilot.app.screen
    main.select_campaign(cid)
    await settle(pilot)
    assert main.campaign_id == cid


async def test_attaches_to_the_running_campaign_and_shows_its_live_log(seeded, empty_spec_dir):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        assert main.campaign_id == facts["running_campaign"]
        assert main.running_gen == facts["in_progress"] == main.log_gen
        log = main.query_one(LogView)
        assert any("running tests" in text for _, text in log.lines())
        table = main.query_one("#campaigns", DataTable)
        assert table.row_count == 3  # (all) + two campaigns
        # the SIMULATED badge is on: the campaign uses the sim provider
        bar = main.query_one(StatusBar)
        assert bar.simulated and "SIMULATED" in plain(bar)


async def test_jump_failure_to_failure_in_the_tree(seeded, empty_spec_dir):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select_campaign(pilot, facts["campaign"])
        tree = app.screen.query_one(GenerationTree)
        tree.focus()
        seen = []
        for _ in range(3):
            await pilot.press("right_square_bracket")
            await settle(pilot, 2)
            seen.append(tree.selected_generation)
        # from wherever the cursor starts, "]" visits failures in increasing order
        assert all(n in facts["failed"] for n in seen)
        idx = [facts["failed"].index(n) for n in seen]
        assert idx[1] == (idx[0] + 1) % len(facts["failed"]) and idx[2] == (idx[1] + 1) % len(facts["failed"])
        await pilot.press("left_square_bracket")
        await settle(pilot, 2)
        assert tree.selected_generation == seen[1]
        # the log follows the cursor
        assert app.screen.log_gen == seen[1]


async def test_inspector_failure_to_failure_output_files_and_diff(seeded, empty_spec_dir):
    home, facts = seeded
    failed = facts["failed"]
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select_campaign(pilot, facts["campaign"])
        app.screen.jump_to_generation(failed[0])
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        insp = app.screen
        assert isinstance(insp, InspectorScreen) and insp.number == failed[0]
        header = plain(insp.query_one("#insp-header", Static))
        assert f"Generation #{failed[0]}" in header and "failed at" in header
        # next / previous failed generation
        await pilot.press("n")
        await settle(pilot)
        assert insp.number == failed[1]
        await pilot.press("n")
        await settle(pilot)
        assert insp.number == failed[2]
        await pilot.press("p")
        await settle(pilot)
        assert insp.number == failed[1]
        # walk to a test failure: its report has failed tests with their location
        target = next(n for n in failed if "test" in app.cam.reads.generation_detail(n).failure_stage)
        insp.load(target)
        await settle(pilot)
        checks = insp.query_one("#checks", DataTable)
        row = insp.rows[checks.cursor_row]
        assert row.failed and row.depth == 1 and row.location.startswith("tests/test_server.py:")
        detail = plain(insp.query_one("#check-detail", Static))
        assert "AssertionError" in detail
        # next failed stage cycles through the failed rows
        before = checks.cursor_row
        await pilot.press("s")
        await settle(pilot, 2)
        assert checks.cursor_row != before and insp.rows[checks.cursor_row].failed
        # stdout tail
        await pilot.press("2")
        await settle(pilot, 2)
        assert insp.query_one("#insp-tabs", TabbedContent).active == "tab-output"
        assert "short test summary info" in plain(insp.query_one("#stdout", Static))
        # open the file of a failure at its line
        await pilot.press("1")
        checks.move_cursor(row=next(i for i, r in enumerate(insp.rows) if r.location))
        await pilot.press("o")
        await settle(pilot, 2)
        assert insp.query_one("#insp-tabs", TabbedContent).active == "tab-files"
        assert insp.query_one("#file-box").border_title == "tests/test_server.py"
        code = plain(insp.query_one("#file-code", Static))
        assert "def test_counts_words" in code and "5▶" in code
        # the diff against the parent
        await pilot.press("4")
        await settle(pilot, 2)
        diff_list = insp.query_one("#diff-list", OptionList)
        assert diff_list.option_count >= 1
        assert "tally/server.py" in [o.id for o in diff_list._options]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_spec_screen_diffs_two_versions(seeded, empty_spec_dir):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        spec = app.screen
        assert isinstance(spec, SpecScreen)
        # newest version against its parent by default
        assert (spec.a, spec.b) == (facts["v2"], facts["v3"])
        # pick v1 as A and v2 as B with the keys
        tree = spec.query_one("#spec-tree")
        tree.focus()
        await pilot.press("home")  # v1
        await pilot.press("a")
        await pilot.press("down")  # v2
        await pilot.press("b")
        await settle(pilot)
        assert (spec.a, spec.b) == (facts["v1"], facts["v2"])
        diff = spec.query_one(SideBySideDiff)
        assert diff.model is not None and (diff.model.added, diff.model.removed) == (3, 1)
        header = plain(spec.query_one("#diff-header", Static))
        assert "+3" in header and "Testing" in header and "FROZEN intact" in header
        await pilot.press("c")  # unfold: every line
        await settle(pilot, 1)
        assert diff.full and not any(r.kind == "fold" for r in diff.model.rows)
        await pilot.press("n")  # to the first change
        await settle(pilot, 1)
        first = diff._first_visual[diff.model.hunks[0]]
        assert diff.scroll_y == min(first - 2, diff.max_scroll_y) > 0
        await pilot.press("x")
        await settle(pilot)
        assert (spec.a, spec.b) == (facts["v2"], facts["v1"])
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_help_lists_every_key_of_the_screen(seeded, empty_spec_dir):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot, 1)
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(plain(s) for s in app.screen.query(".help-row"))
        for binding in MainScreen.BINDINGS:
            assert binding.tooltip in text, binding.tooltip
        assert "Every key on this screen" in text and "Spec versions and diffs" in text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_palette_jumps_to_generation_n(seeded, empty_spec_dir):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.campaign_id == facts["running_campaign"]
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"13")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot, 6)
        main = app.screen
        assert isinstance(main, MainScreen)
        # generation 13 lives in the other campaign: the view switched to it
        assert main.campaign_id == facts["campaign"]
        assert main.query_one(GenerationTree).selected_generation == 13


async def test_slash_search_opens_a_generation(seeded, empty_spec_dir):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await pilot.pause(0.1)
        await pilot.press(*"#17")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot, 6)
        assert app.screen.query_one(GenerationTree).selected_generation == 17


async def test_pause_resume_abort_send_commands(seeded, empty_spec_dir):
    """With an engine holding the campaign (a stand-in process holds its lease), p and a
    (confirmed) become commands for that engine; the campaign row is the engine's to change."""
    import subprocess

    home, facts = seeded
    cid = facts["running_campaign"]
    holder = subprocess.Popen(["sleep", "600"])
    try:
        with Store.open(db_path(home)) as st:
            assert st.acquire_lease(cid, pid=holder.pid)
        app = make_app(home, empty_spec_dir)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.screen.campaign_id == cid and app.screen.check_action("pause", ())
            await pilot.press("p")
            await settle(pilot)
            await pilot.press("a")
            await settle(pilot, 1)
            await pilot.press("y")  # confirm the abort
            await settle(pilot)
        with Store.open(db_path(home)) as st:
            cmds = [c["command"] for c in st.take_commands(cid)]
            assert st.campaign(cid)["state"] == "running"
        assert cmds == ["pause", "abort"]
    finally:
        holder.kill()
        holder.wait(30)  # SIGKILLed: bounded anyway, never unbounded


async def test_abort_without_an_engine_closes_the_campaign(seeded, empty_spec_dir):
    """No engine runs the "running" campaign (killed): pause is not offered, abort closes the
    record at once and its in-flight generation is marked interrupted."""
    home, facts = seeded
    cid = facts["running_campaign"]
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert main.campaign_id == cid
        assert main.check_action("pause", ()) is False and main.check_action("abort", ())
        await pilot.press("a")
        await settle(pilot, 1)
        await pilot.press("y")
        await settle(pilot)
    with Store.open(db_path(home)) as st:
        assert st.campaign(cid)["state"] == "aborted"
        assert st.generation(facts["in_progress"]).outcome.value == "interrupted"
        assert st.take_commands(cid) == []


async def test_completed_campaign_hides_control_keys(seeded, empty_spec_dir):
    home, facts = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select_campaign(pilot, facts["campaign"])
        assert app.screen.check_action("pause", ()) is False
        await pilot.press("p")
        await settle(pilot)
    with Store.open(db_path(home)) as st:
        assert st.take_commands(facts["campaign"]) == []


async def test_lazy_tree_with_ten_thousand_generations(bulk_home, empty_spec_dir):
    home, facts = bulk_home
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert main.campaign_id == facts["campaign"]
        tree = main.query_one(GenerationTree)
        assert len(tree.model.numbers) == 10_000
        top = list(tree.root.children)
        assert all(isinstance(n.data, PageNode) for n in top)
        assert len(top) <= len(tree.model.spine) // 100 + 1
        # only the newest page (and the newest spine generation) were materialised
        assert len(tree._gen_nodes) < 400
        # reveal a generation deep in an unopened page
        target = main.lineage.failed[len(main.lineage.failed) // 3]
        main.jump_to_generation(target)
        await settle(pilot)
        assert tree.selected_generation == target
        assert len(tree._gen_nodes) < 800


async def test_live_log_streams_new_chunks_and_follow_pauses(seeded, empty_spec_dir):
    home, facts = seeded
    n = facts["in_progress"]
    app = make_app(home, empty_spec_dir, live=True, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        log = main.query_one(LogView)
        start = log.line_count
        with Store.open(db_path(home)) as st:
            st.append_log(n, "stdout", [f"line {i}" for i in range(200)])
        deadline = time.monotonic() + 10
        while log.line_count < start + 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert log.line_count == start + 200
        assert log.follow and log.scroll_y == log.max_scroll_y
        await pilot.press("f")  # pause
        assert not log.follow
        with Store.open(db_path(home)) as st:
            st.append_log(n, "stderr", ["boom"])
        deadline = time.monotonic() + 10
        while log.unseen < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert log.unseen == 1 and "held (+1 new)" in str(log.border_subtitle)
        await pilot.press("f")
        assert log.follow and log.unseen == 0


async def test_log_view_is_bounded():
    from textual.app import App, ComposeResult

    class LogApp(App):
        def compose(self) -> ComposeResult:
            yield LogView(max_lines=1000)

    app = LogApp()
    async with app.run_test(size=(80, 20)) as pilot:
        log = app.query_one(LogView)
        for batch in range(30):
            log.append([("stdout", f"{batch}-{i}") for i in range(100)])
        await pilot.pause()
        assert log.line_count == 1000 and log.total == 3000
        assert log.lines()[-1] == ("stdout", "29-99")
        assert log.lines()[0] == ("stdout", "20-0")


async def test_new_campaign_form_validates_and_starts(seeded, monkeypatch, empty_spec_dir):
    """The form refuses a bad number at its field and builds the StartCampaign command from
    the rest. Starting a detached engine needs Docker (test_e2e does it): here the command's
    handler only stores the campaign, as the real one does before it spawns."""
    from cambrian_tui.screens import new_campaign
    from core.app import commands

    home, facts = seeded
    started = {}

    def fake_start(app, cmd):
        started["cmd"] = cmd
        with Store.open(db_path(home)) as st:
            st.create_campaign("c-from-form", cmd.spec.hash, {"provider": cmd.provider, "generations": cmd.generations})
            st.set_campaign_state("c-from-form", "running")
        return commands.CampaignStarted("c-from-form", cmd.provider, True)

    monkeypatch.setitem(commands.HANDLERS, commands.StartCampaign, fake_start)
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, new_campaign.NewCampaignScreen)
        form.query_one("#nc-generations").value = "0"
        await pilot.press("ctrl+s")
        await settle(pilot, 1)
        assert "Generations N: must be at least 1" in plain(form.query_one("#nc-error", Static))
        assert form.query_one("#nc-generations").border_subtitle == "must be at least 1"
        assert "cmd" not in started
        form.query_one("#nc-generations").value = "3"
        form.query_one("#nc-parallelism").value = "2"
        form.query_one("#nc-budget_usd").value = "1.5"
        form.query_one("#nc-seed").value = "42"
        await pilot.press("ctrl+s")
        await settle(pilot, 6)
        assert isinstance(app.screen, MainScreen)
        c = started["cmd"]
        assert (c.generations, c.parallelism, c.budget_usd, c.seed, c.provider) == (3, 2, 1.5, 42, "sim")
        assert c.spec.hash == facts["v3"]  # the selected campaign's spec preselected
        assert app.screen.campaign_id == "c-from-form"


async def test_theme_is_remembered(seeded, empty_spec_dir):
    home, _ = seeded
    app = CambrianApp(home, spec_dir=empty_spec_dir, live=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.theme = "nord"
        await pilot.pause()
    again = CambrianApp(home, spec_dir=empty_spec_dir, live=True)
    assert again.theme == "nord"


async def test_a_killed_engine_is_noticed_without_a_database_write(seeded, empty_spec_dir):
    """The running campaign's engine is SIGKILLed: with nothing written any more, the live
    campaign list still turns "running●" into "stalled" within seconds, and offers resume."""
    import subprocess

    home, facts = seeded
    cid = facts["running_campaign"]
    holder = subprocess.Popen(["sleep", "600"])
    try:
        with Store.open(db_path(home)) as s:
            assert s.acquire_lease(cid, pid=holder.pid)
        app = make_app(home, empty_spec_dir, live=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            main = app.screen
            await select_campaign(pilot, cid)
            table = main.query_one("#campaigns", DataTable)

            def state() -> str:
                return str(table.get_row(cid)[1])

            deadline = time.monotonic() + 20
            while state() != "running●" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert state() == "running●" and not main.check_action("resume", ())
            holder.kill()
            holder.wait(30)  # SIGKILLed: bounded anyway, never unbounded
            deadline = time.monotonic() + 20
            while state() != "stalled" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert state() == "stalled"
            await settle(pilot, 1)
            assert main.check_action("resume", ())
    finally:
        holder.kill()
        holder.wait(30)  # SIGKILLed: bounded anyway, never unbounded
