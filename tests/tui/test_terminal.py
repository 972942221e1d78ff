"""The app in a real terminal (tmux): start, keys, what is on screen, quit."""

from __future__ import annotations

import time

import pytest

from tests.tui.termtools import Tmux, cambrian_cmd, require_tools

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _terminal_tools():
    require_tools("tmux")


@pytest.fixture
def tmux_app(seeded):
    home, facts = seeded
    t = Tmux(cambrian_cmd(home, "tui"), 120, 40)
    yield t, home, facts
    t.kill()


def test_tui_in_tmux(tmux_app):
    t, home, facts = tmux_app
    screen = t.wait_for("Campaigns (2)")
    # attached to the running campaign, its in-progress generation's log on screen
    screen = t.wait_for("running tests")
    # Textual answers terminal queries during its first second; keys typed into that
    # window can be swallowed by the escape-sequence parser, as a person rarely would.
    time.sleep(1.0)
    # the status bar's SIMULATED label arrives with the engine status, after the first log
    # lines: wait for it rather than assert on an earlier capture
    screen = t.wait_until(lambda s: "SIMULATED" in s and "F1/? Help" in s, what="SIMULATED and the key help")
    assert f"Rig log — #{facts['in_progress']}" in screen
    # to the completed campaign: focus the list, one row down, back to the tree
    t.keys("1", "Down", "2")
    t.wait_for("Generations 40")
    screen = t.wait_for("failed@")
    assert "✓ #" in screen and "✗ #" in screen
    # next failed generation, then open it in the inspector
    t.keys("]")
    t.keys("Enter")
    screen = t.wait_for("Generation #")
    assert "failed at" in screen and "Report" in screen and "Diff vs parent" in screen
    # the stdout tail tab, then back
    t.keys("2")
    t.wait_for("stdout tail")
    t.keys("Escape")
    t.wait_for("Campaigns (2)")
    # help, then the spec screen
    t.keys("F1")
    t.wait_for("Keys — Campaigns")
    t.keys("Escape")
    t.keys("s")
    t.wait_for("Spec versions (")
    t.wait_for("FROZEN intact")  # the diff header, once the diff is loaded
    t.keys("q")
    t.wait_for("[exited]")


def test_no_mouse_flag_starts(seeded):
    home, _ = seeded
    t = Tmux(cambrian_cmd(home, "tui", "--no-mouse"), 100, 30)
    try:
        t.wait_for("Campaigns (2)")
        t.keys("q")
        t.wait_for("[exited]")
    finally:
        t.kill()
