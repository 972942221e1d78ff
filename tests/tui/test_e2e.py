"""End to end with the real engine and the real Docker rig, driven through the TUI.

Start a campaign from the form (sim provider, detached engine), watch it finish live,
open a failed generation, jump failure to failure, read a stdout tail, open a file, and
diff two spec versions. Seed 0 of the sim with the echo genome fails generations 1
(a failing test) and 2 (a syntax error) — see core/llm/sim/defects.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import Select, Static

from cambrian_tui.app import CambrianApp
from cambrian_tui.screens.inspector import InspectorScreen
from cambrian_tui.screens.main import MainScreen
from cambrian_tui.screens.new_campaign import NewCampaignScreen
from cambrian_tui.screens.spec import SpecScreen
from cambrian_tui.widgets.lineage_tree import GenerationTree
from cambrian_tui.widgets.log_view import LogView
from cambrian_tui.widgets.side_diff import SideBySideDiff
from cambrian_tui.widgets.status_bar import StatusBar
from core.home import db_path, spec_dir
from core.store import Store
from tests.tui.conftest import SIZE, settle

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]


def plain(w: Static) -> str:
    return str(w.render())


async def until(pilot, pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        await asyncio.sleep(0.25)
    await settle(pilot)


async def test_campaign_from_the_form_to_failed_generations(tmp_path, rig_ready):
    home = tmp_path / "home"
    home.mkdir()
    app = CambrianApp(home, live=True, spec_dir=spec_dir(), theme="textual-dark", poll_interval=0.25)
    cid = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("n")
            await settle(pilot)
            form = app.screen
            assert isinstance(form, NewCampaignScreen)
            await until(pilot, lambda: bool(form.choices), 30, "the spec choices")
            echo = next(c for c in form.choices if c.title == "echo")
            form.query_one("#nc-spec", Select).value = echo.key
            form.query_one("#nc-generations").value = "4"
            form.query_one("#nc-parallelism").value = "2"
            form.query_one("#nc-max_retries").value = "0"
            form.query_one("#nc-seed").value = "0"
            await pilot.press("ctrl+s")
            main = app.screen_stack[0] if isinstance(app.screen_stack[0], MainScreen) else None
            await until(pilot, lambda: isinstance(app.screen, MainScreen), 60, "the engine to start")
            main = app.screen
            await until(pilot, lambda: main.current_campaign() is not None, 30, "the campaign to be listed")
            cid = main.campaign_id
            c = main.current_campaign()
            assert c.provider == "sim" and c.target == 4
            # listed as soon as it is stored (pending); the detached engine takes it a moment later
            await until(pilot, lambda: main.current_campaign().engine_alive
                        or main.current_campaign().state == "completed", 60, "the engine to take the campaign")
            # watch it live, no key pressed: the log follows a generation in flight, all the way
            follows, deadline = [], time.monotonic() + 600
            while main.current_campaign().state != "completed":
                assert time.monotonic() < deadline, "the campaign did not finish"
                assert main.live_follow, "follow mode switched itself off"
                if main.lineage is not None and main.lineage.running:
                    follows.append(main.log_gen in main.lineage.running)
                await asyncio.sleep(0.1)
            await settle(pilot)
            assert follows and all(follows), follows
            title = str(main.query_one(LogView).border_title)
            assert main.live_follow and "pinned" not in title and title.endswith("last (completed)"), title
            await until(pilot, lambda: main.lineage is not None and len(main.lineage.numbers) == 4, 30,
                        "the tree to show 4 generations")
            assert main.lineage.failed == [1, 2], main.lineage.failed
            assert main.query_one(StatusBar).simulated and "SIMULATED" in plain(main.query_one(StatusBar))
            # failure to failure in the tree, then open one
            tree = main.query_one(GenerationTree)
            tree.focus()
            await pilot.press("right_square_bracket")
            await settle(pilot)
            first = tree.selected_generation
            assert first in (1, 2)
            await pilot.press("enter")
            await settle(pilot)
            insp = app.screen
            assert isinstance(insp, InspectorScreen) and insp.number == first
            if first == 2:
                await pilot.press("p")
            await settle(pilot)
            assert insp.number == 1
            await pilot.press("n")
            await settle(pilot)
            assert insp.number == 2
            await pilot.press("p")
            await settle(pilot)
            # generation 1 failed a test: its report names the test and the stdout tail shows pytest
            d = insp.detail
            assert d.failure_stage == "test" and d.report is not None and d.report.status == "non-viable"
            assert any(r.failed and r.depth == 1 for r in insp.rows)
            await pilot.press("2")
            await settle(pilot)
            assert "passed" in plain(insp.query_one("#stdout")) or "failed" in plain(insp.query_one("#stdout"))
            # open a file of the artifact
            await pilot.press("3")
            await settle(pilot)
            assert "manifest.json" in insp.file_paths
            assert any(p.endswith(".py") for p in insp.file_paths)
            code = plain(insp.query_one("#file-code"))
            assert code.strip() and "1 " in code
            await pilot.press("escape")
            await settle(pilot)
            # two spec versions side by side: the campaign's echo against the shipped prime
            await pilot.press("f3")
            await settle(pilot)
            spec = app.screen
            assert isinstance(spec, SpecScreen)
            prime = next(v for v in spec.versions if v.title == "prime")
            stored = next(v for v in spec.versions if v.origin != "shipped")
            spec.a, spec.b = stored.hash, prime.hash
            spec._refresh_labels()
            spec._load_diff()
            await settle(pilot)
            diff = spec.query_one(SideBySideDiff)
            assert diff.model is not None and diff.model.added > 0 and diff.model.removed > 0
            assert "acceptance-vectors" in plain(spec.query_one("#diff-header"))
    finally:
        if cid:
            with Store.open(db_path(home)) as st:
                if st.lease_alive(cid):
                    st.send_command(cid, "abort")


async def test_quitting_the_tui_leaves_the_campaign_running(tmp_path, rig_ready):
    home = tmp_path / "home"
    home.mkdir()
    app = CambrianApp(home, live=True, spec_dir=spec_dir(), theme="textual-dark", poll_interval=0.25)
    cid = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("n")
            await settle(pilot)
            form = app.screen
            await until(pilot, lambda: bool(form.choices), 30, "the spec choices")
            echo = next(c for c in form.choices if c.title == "echo")
            form.query_one("#nc-spec", Select).value = echo.key
            form.query_one("#nc-generations").value = "3"
            form.query_one("#nc-parallelism").value = "1"
            form.query_one("#nc-max_retries").value = "0"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.current_campaign()
                        is not None, 60, "the campaign to start")
            cid = app.screen.campaign_id
            await pilot.press("q")  # quit while it runs
        with Store.open(db_path(home)) as st:
            assert st.campaign(cid)["state"] in ("pending", "running")
            assert st.lease_alive(cid), "quitting the TUI must not stop the engine"
            deadline = time.monotonic() + 600
            while st.campaign(cid)["state"] not in ("completed", "stopped", "aborted", "crashed"):
                assert time.monotonic() < deadline, "the campaign did not finish"
                time.sleep(0.5)
            assert st.campaign(cid)["state"] == "completed"
            assert len(st.generations(cid)) == 3
        # a new TUI attaches to it and shows the outcome
        again = CambrianApp(home, live=False, spec_dir=spec_dir(), theme="textual-dark")
        async with again.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert again.screen.campaign_id == cid
            assert len(again.screen.lineage.numbers) == 3
    finally:
        if cid:
            with Store.open(db_path(home)) as st:
                if st.lease_alive(cid):
                    st.send_command(cid, "abort")
