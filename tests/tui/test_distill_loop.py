"""The distill loop in the TUI: D on a finished campaign lands on its proposals (F4) with
their evidence; accepting offers a confirmation campaign with the original's settings and
seed schedule, which starts detached, and its before/after shows under the evidence.

The original campaign is made offline (the real sim writes the code; the fake rig of
tests/evolution judges it as the sim's model says the real rig does); the confirmation
campaign is a real detached engine (backend ``none``), aborted in teardown."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import Static

from cambrian_tui.app import CambrianApp
from cambrian_tui.screens.amendments import AmendmentsScreen
from cambrian_tui.screens.dialogs import ConfirmDialog
from cambrian_tui.screens.main import MainScreen
from core.distill.confirm import confirmations
from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import db_path
from core.store import Store
from tests.evolution.conftest import PRIME, make_fake_rig
from tests.tui.conftest import settle
from tests.tui.pilot import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SETTINGS = dict(spec_hash="sha256:" + "0" * 64, generations=30, parallelism=2, provider="sim", model="sim-1",
                seed=1, max_retries=0, backend="none")


def _stop(home, cid: str) -> None:
    """Abort a detached confirmation campaign and wait for its engine to be gone."""
    with Store.open(db_path(home)) as s:
        if s.lease_alive(cid):
            s.send_command(cid, "abort")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Store.open(db_path(home)) as s:
            if not s.lease_alive(cid):
                return
        time.sleep(0.5)
    raise AssertionError(f"the engine of {cid} did not stop")


async def test_d_lands_on_the_proposals_and_accept_offers_a_confirmation(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with Store.open(db_path(home)) as store:
        original = create_campaign(store, SETTINGS, PRIME)
    assert await asyncio.to_thread(run_campaign, home, original, rig_fn=make_fake_rig(home)) == "completed"
    spec_dir = tmp_path / "no-specs"
    spec_dir.mkdir()
    app = CambrianApp(home, spec_dir=spec_dir, live=False, theme="textual-dark", show_home=False)
    started: list[str] = []
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            await settle(pilot)
            main = app.screen
            assert isinstance(main, MainScreen)
            main.select_campaign(original)
            await settle(pilot)
            await pilot.press("D")
            def on_proposals() -> bool:
                s = app.screen
                return isinstance(s, AmendmentsScreen) and s.filter == "pending" and s.current() is not None

            await until(pilot, on_proposals, "the Amendments screen showing the proposals", 90)
            screen = app.screen
            row = screen.current()
            assert screen.filter == "pending" and row.status == "pending" and row.campaign_id == original
            assert row.feature == "swallowed_exception"
            evidence = str(screen.query_one("#amend-evidence", Static).render())
            assert f"#{row.id}" in evidence and "p " in evidence and "q " in evidence

            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation offer", 30)
            assert original in str(app.screen.query_one(".dialog-detail", Static).render())
            await pilot.press("y")

            def confirmation_started() -> bool:
                with Store.open(db_path(home)) as s:
                    started[:] = confirmations(s, row.id)
                return bool(started)

            await until(pilot, confirmation_started, "the confirmation campaign", 60)
            with Store.open(db_path(home)) as s:
                a = s.amendment(row.id)
                c = s.campaign(started[0])
                before = s.campaign(original)["settings"]
            assert a.status.value == "accepted" and c["spec_hash"] == a.result_spec_hash
            assert c["settings"] == {**before, "spec_hash": a.result_spec_hash}  # same settings and seed schedule
            panel = screen.query_one("#amend-confirmation", Static)
            await until(pilot, lambda: started[0] in str(panel.render()), "the before/after panel", 90)
            text = str(panel.render())
            assert original in text and "before" in text and "after" in text
    finally:
        for cid in started:
            _stop(home, cid)
