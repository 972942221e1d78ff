"""Helpers the pilot tests share: the two terminal sizes, an app on a home, a widget's
text, and waiting for a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time

import pytest

from cambrian_tui.app import CambrianApp

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]


def plain(widget) -> str:
    return str(widget.render())


def make_app(home, spec_dir, **kw) -> CambrianApp:
    kw.setdefault("live", False)
    return CambrianApp(home, spec_dir=spec_dir, theme="textual-dark", show_home=False, **kw)


async def until(pilot, pred, what: str, timeout: float = 20) -> None:
    """Wait until ``pred()`` holds, at most ``timeout`` seconds, then let the app settle."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    await pilot.pause()
