"""The rig hosts screen (F6, issue 25): the home's hosts with slots, state (drained and
why), engine facts; `c` checks one (a host nobody answers fails with the reason recorded
and stays drained), `a` adds one (drained until checked), `x` forgets one. Real host book,
real `ssh` against a loopback port nothing listens on — no Docker."""

from __future__ import annotations


import pytest
from textual.widgets import DataTable, Input, Static

from cambrian_tui.screens.dialogs import ConfirmDialog, TextDialog
from cambrian_tui.screens.hosts import HostsScreen
from core.app.hosts import add_host, list_hosts
from tests.tui.conftest import settle
from tests.tui.pilot import SIZES, make_app, plain, until
from tests.ports import free_port

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("size", SIZES)
async def test_hosts_screen_lists_checks_adds_and_removes(tmp_path, empty_spec_dir, size):
    home = tmp_path / "home"
    home.mkdir()
    add_host(home, "local")
    port = free_port()
    add_host(home, f"ssh://nobody@127.0.0.1:{port}", name="gone")
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        from cambrian_tui.widgets.status_bar import StatusBar

        bar = app.screen.query_one(StatusBar)
        await until(pilot, lambda: bar.info is not None, "the status")
        assert bar.info.hosts == (("local", None), ("gone", "not checked yet: run `cambrian hosts check gone`"))
        assert "hosts 1/2 ⚠1 drained (F6)" in " ".join(c.plain for _p, c in bar.parts())
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, HostsScreen) and len(app.screen.rows) == 2, "the hosts")
        screen = app.screen
        table = screen.query_one("#hosts-table", DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["local"][3] == "ready" and rows["gone"][3] == "drained"
        assert "2, 1 drained" in str(table.border_title)
        table.move_cursor(row=[r["name"] for r in screen.rows].index("gone"))
        await settle(pilot)
        detail = " ".join(plain(screen.query_one("#host-detail", Static)).split())
        assert "DRAINED: not checked yet" in detail

        # c: nobody answers on that port — the check fails, says why, and the host stays drained
        await pilot.press("c")
        await until(pilot, lambda: not screen.busy and any(r.get("last_check_error") for r in screen.rows),
                    "the failed check", timeout=90)
        await settle(pilot)
        gone = next(r for r in list_hosts(home) if r["name"] == "gone")
        assert gone["drained"] and gone["last_check_error"]
        detail = " ".join(plain(screen.query_one("#host-detail", Static)).split())
        assert "last check:" in detail and "DRAINED: check failed:" in detail

        # a: a new host, drained until checked
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, TextDialog), "the add dialog")
        app.screen.query_one("#text-input", Input).value = f"ssh://bob@127.0.0.1:{port}"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen and len(screen.rows) == 3, "the new host")
        added = [r for r in list_hosts(home) if r["name"] not in ("local", "gone")]
        assert len(added) == 1 and added[0]["drained"]

        # x: forget the highlighted host, after a confirmation
        table.move_cursor(row=[r["name"] for r in screen.rows].index("gone"))
        await settle(pilot)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: app.screen is screen and len(screen.rows) == 2, "the removal")
        assert "gone" not in [r["name"] for r in list_hosts(home)]
