"""Fixtures for the TUI tests: seeded homes (built once, copied per test) and settling."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tui.seed import seed_bulk, seed_small

SIZE = (120, 40)


@pytest.fixture(scope="session")
def _small_template(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("tui-template") / "home"
    facts = seed_small(home)
    return home, facts


@pytest.fixture
def seeded(tmp_path, _small_template) -> tuple[Path, dict]:
    """(home, facts): a completed 40-generation campaign, a running one, three spec versions."""
    src, facts = _small_template
    home = tmp_path / "home"
    shutil.copytree(src, home)
    return home, facts


@pytest.fixture(scope="session")
def bulk_home(tmp_path_factory) -> tuple[Path, dict]:
    """10 000 generations in one campaign (shared, read-only)."""
    home = tmp_path_factory.mktemp("tui-bulk") / "home"
    return home, seed_bulk(home, 10_000)


@pytest.fixture
def empty_spec_dir(tmp_path) -> Path:
    d = tmp_path / "no-shipped-specs"
    d.mkdir()
    return d


async def _wait_workers(app) -> None:
    from textual.worker import WorkerCancelled, WorkerFailed

    for _ in range(50):
        pending = [w for w in app.workers if w.group != "db-watch" and not w.is_finished]
        if not pending:
            return
        try:
            await app.workers.wait_for_complete(pending)
        except (WorkerCancelled, WorkerFailed):
            continue


async def settle(pilot, rounds: int = 4) -> None:
    """Let workers finish and their messages land (several rounds: loads trigger loads).
    The database watcher of live apps never finishes and is not waited for."""
    app = pilot.app
    for _ in range(rounds):
        await _wait_workers(app)
        await pilot.pause(0.02)
    await _wait_workers(app)
    await pilot.pause()


async def settle_stable(pilot, deadline_s: float = 30.0) -> None:
    """settle(), then again until two screen captures 0.1 s apart agree: a loaded machine can
    still be laying out or rebuilding a tree after the workers are done. Gives up (leaving the
    snapshot to show the difference) after deadline_s."""
    import time

    app = pilot.app
    await settle(pilot)
    end = time.monotonic() + deadline_s
    before = app.export_screenshot()
    while time.monotonic() < end:
        await pilot.pause(0.1)
        await settle(pilot, rounds=1)
        now = app.export_screenshot()
        if now == before:
            return
        before = now
