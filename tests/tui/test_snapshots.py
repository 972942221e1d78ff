"""Snapshot tests (pytest-textual-snapshot) on the seeded database, at 120x36 and 80x24.

Deterministic: fixed timestamps in the fixture, no watcher thread or refresh timers
(``live=False``), a fixed theme, no shipped specs, no home path on screen.
Regenerate with ``.venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update`` after a
deliberate change, and look at them (``python tests/tui/snaptext.py FILE.svg`` prints one as text).
"""

from __future__ import annotations

import pytest

from cambrian_tui.app import CambrianApp
from core.home import db_path
from core.store import Store
from tests.tui.conftest import settle_stable as settle
from tests.tui.seed import SPEC_V1, _report

pytestmark = pytest.mark.timeout(180)

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]


def snapshot_app(home, spec_dir) -> CambrianApp:
    return CambrianApp(home, live=False, spec_dir=spec_dir, theme="textual-dark", show_home=False)


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, seeded, empty_spec_dir, size):
    """The campaign list, tree, log and figures; Help and Quit first in the footer."""
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.select_campaign(facts["campaign"])
        await settle(pilot)
        pilot.app.screen.jump_to_generation(facts["failed"][-1])
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_main_screen_live(snap_compare, seeded, empty_spec_dir, size):
    """Attached to the running campaign: its generation in flight visible and followed live."""
    home, _ = seeded

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


def test_terminal_too_small(snap_compare, seeded, empty_spec_dir):
    home, _ = seeded

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=(60, 15), run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_inspector(snap_compare, seeded, empty_spec_dir, size):
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.select_campaign(facts["campaign"])
        await settle(pilot)
        target = next(n for n in facts["failed"]
                      if pilot.app.cam.reads.generation_detail(n).failure_stage == "test")
        pilot.app.screen.open_inspector(target)
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_inspector_vector_failure(snap_compare, tmp_path, empty_spec_dir, size):
    """A failed vector listed once, with the response body that explains it."""
    home = tmp_path / "home"
    from tests.tui.seed import fixed_clock

    with fixed_clock(), Store.open(db_path(home)) as st:
        h = st.add_spec(SPEC_V1, label="t").hash
        st.create_campaign("c-v", h, {"generations": 1, "provider": "sim", "model": "sim-1"})
        g = st.create_generation(spec_hash=h, campaign_id="c-v")
        rep = _report(g.number, "health")
        rep["checks"]["health"]["vectors"][0].update(status=200, body_excerpt='{"status": "starting"}',
                                                     error="body_contains: status is 'starting', not 'ok'")
        rep["diagnostics"]["failures"] = [{"test": "vector:health-ok",
                                           "error": "body_contains: status is 'starting', not 'ok'"}]
        st.record_report(g.number, rep)
        st.set_outcome(g.number, "failed", reason="non-viable at health")

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.open_inspector(0)
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_new_campaign_form_errors(snap_compare, seeded, empty_spec_dir, size):
    """Bad numbers are refused at their fields, and the form says which."""
    home, _ = seeded

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = pilot.app.screen
        form.query_one("#nc-generations").value = "2x"
        form.query_one("#nc-seed").value = "1.5"
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_spec_diff(snap_compare, seeded, empty_spec_dir, size):
    home, facts = seeded

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        pilot.app.screen.select_version(facts["v2"])  # v2 against its parent v1
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, seeded, empty_spec_dir, size):
    home, _ = seeded

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=size, run_before=run_before)


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

    assert snap_compare(snapshot_app(home, empty_spec_dir), terminal_size=(120, 36), run_before=run_before)
