"""Snapshot tests (pytest-textual-snapshot) at 120x40 on the seeded database.

Deterministic: fixed timestamps in the fixture, no watcher thread or refresh timers
(``live=False``), a fixed theme, no shipped specs, no home path on screen.
Regenerate with ``.venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest

from cambrian_tui.app import CambrianApp
from tests.tui.conftest import SIZE, settle

pytestmark = pytest.mark.timeout(180)


def snapshot_app(home, spec_dir) -> CambrianApp:
    return CambrianApp(home, live=False, spec_dir=spec_dir, theme="textual-dark", show_home=False)


def test_main_screen(snap_compare, seeded, empty_spec_dir):
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.select_campaign(facts["campaign"])
        await settle(pilot)
        pilot.app.screen.jump_to_generation(facts["failed"][-1])
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=SIZE, run_before=run_before)


def test_inspector(snap_compare, seeded, empty_spec_dir):
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.select_campaign(facts["campaign"])
        await settle(pilot)
        target = next(n for n in facts["failed"]
                      if pilot.app.data.generation_detail(n).failure_stage == "test")
        pilot.app.screen.open_inspector(target)
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=SIZE, run_before=run_before)


def test_spec_diff(snap_compare, seeded, empty_spec_dir):
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        pilot.app.screen.select_version(facts["v2"])  # v2 against its parent v1
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, seeded, empty_spec_dir):
    home, _ = seeded

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=SIZE, run_before=run_before)


def test_spec_diff_frozen_region(snap_compare, seeded, empty_spec_dir):
    """Everything unfolded, scrolled to the end: the FROZEN block marked in the gutter."""
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        pilot.app.screen.select_version(facts["v2"])
        await settle(pilot)
        await pilot.press("z", "c")  # full-width, every line
        await settle(pilot)
        diff = pilot.app.screen.query_one("#spec-diff")
        diff.focus()
        await pilot.press("end")
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=SIZE, run_before=run_before)
