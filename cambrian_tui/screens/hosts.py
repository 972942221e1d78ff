"""Rig hosts screen (F6): this machine's Docker engine and other machines' over SSH — their
slots, state (ready, or drained with the reason), failures, engine facts and calibration —
with `a` add, `c` check (preflight, image push, calibration; a pass undrains) and `x` remove.

Everything goes through ``core.app.hosts`` (the functions `cambrian hosts` calls) in thread
workers. The host book is a file the engines update (a failure drains a host), not the
database, so the screen re-reads it on a timer while it is shown.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from cambrian_tui.keys import bindings
from cambrian_tui.screens.base import CambrianScreen

REFRESH_S = 2.0  # an engine drains a host in its own process: show it within this


class HostsLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]], error: str | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.error = error


class HostDone(Message):
    """A check, add or remove finished: ``ok`` False carries the reason."""

    def __init__(self, what: str, ok: bool, text: str) -> None:
        super().__init__()
        self.what = what
        self.ok = ok
        self.text = text


def _facts(r: dict[str, Any]) -> str:
    if not r.get("docker"):
        return "not checked"
    return f"docker {r['docker']} · kernel {r['kernel']} · cgroup v{r['cgroup']}"


class HostsScreen(CambrianScreen):
    BINDINGS = bindings("hosts")
    DEFAULT_CSS = """
    HostsScreen #hosts-table { height: auto; max-height: 60%; border: round $panel-lighten-2; }
    HostsScreen #hosts-table:focus { border: round $accent; }
    HostsScreen #host-detail { height: 1fr; padding: 0 1; border: round $panel-lighten-2;
                               border-title-color: $text-primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.busy: set[str] = set()  # hosts with a check in flight

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="hosts-table", cursor_type="row")
            yield Static("", id="host-detail")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#hosts-table", DataTable)
        table.border_title = "Rig hosts"
        for col, width in (("host", 14), ("address", 30), ("slots", 5), ("state", 12), ("fails", 5),
                           ("engine", 42)):
            table.add_column(col, key=col, width=width)
        self.query_one("#host-detail", Static).border_title = "Host"
        self.load()
        if self.capp.live:
            self.set_interval(REFRESH_S, self.load)

    def on_screen_resume(self) -> None:
        self.load()

    def load(self) -> None:
        from core.app.hosts import HostError, host_rows

        home = self.capp.home

        def read() -> HostsLoaded:
            try:
                return HostsLoaded(host_rows(home))
            except HostError as exc:  # a hosts.json someone broke: say so, change nothing
                return HostsLoaded([], str(exc))

        self.background("hosts", read)

    def on_hosts_loaded(self, message: HostsLoaded) -> None:
        if message.error:
            self.query_one("#host-detail", Static).update(Content.styled(message.error, "$text-error"))
            return
        if message.rows == self.rows and self.query_one("#hosts-table", DataTable).row_count:
            return
        table = self.query_one("#hosts-table", DataTable)
        keep = table.cursor_row
        self.rows = message.rows
        table.clear()
        for r in self.rows:
            state = ("checking…" if r["name"] in self.busy else "drained" if r["drained"] else "ready")
            style = "$text-warning" if r["drained"] else "$text-success"
            table.add_row(Content(r["name"]), Content(r["url"]), str(r["slots"]), Content.styled(state, style),
                          str(r["failures"] or 0), Content(_facts(r)), key=r["name"])
        table.border_title = f"Rig hosts ({len(self.rows)}, {sum(1 for r in self.rows if r['drained'])} drained)"
        if self.rows:
            table.move_cursor(row=min(max(keep, 0), len(self.rows) - 1))
        self._show_detail(table.cursor_row)

    def _show_detail(self, index: int) -> None:
        box = self.query_one("#host-detail", Static)
        if not 0 <= index < len(self.rows):
            box.update(Content.styled("No rig host: the engine uses this machine's Docker engine. "
                                      f"{self.capp.key_label('hosts.add')} adds one "
                                      "(local, or ssh://user@host).", "dim"))
            return
        r = self.rows[index]
        lines = [Content.styled(f"{r['name']}  {r['url']}", "bold"),
                 Content(f"slots {r['slots']}" + ("" if r["slots_set"] else " (its cores)")
                         + (f" · calibration run {r['calibration_s']} s" if r.get("calibration_s") is not None else "")
                         + (f" · clock skew {r['clock_skew_s']:+.1f} s" if r.get("clock_skew_s") is not None else "")),
                 Content(_facts(r) + (f" · rig image {str(r['image'])[:19]}" if r.get("image") else ""))]
        if r["drained"]:
            lines.append(Content.styled(f"DRAINED: {r['drained']}", "bold $text-warning"))
            lines.append(Content.styled(f"{self.capp.key_label('hosts.check')} checks it; a passing check "
                                        "puts it back in use.", "dim"))
        if r.get("last_check_error"):
            lines.append(Content.styled(f"last check: {r['last_check_error']}", "$text-error"))
        box.update(Content("\n").join(lines))

    @on(DataTable.RowHighlighted, "#hosts-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _selected(self) -> dict[str, Any] | None:
        i = self.query_one("#hosts-table", DataTable).cursor_row
        return self.rows[i] if 0 <= i < len(self.rows) else None

    # actions ----------------------------------------------------------------------------------

    def action_check(self) -> None:
        from core.app.hosts import HostError, PreflightFailed, check_rig_host

        r = self._selected()
        if r is None:
            self.notify("no host to check", timeout=2)
            return
        name, home, app = r["name"], self.capp.home, self.app
        if name in self.busy:
            return
        self.busy.add(name)
        self.rows = []  # redraw with "checking…"
        self.load()

        def progress(msg: str) -> None:  # the image push and calibration say where they are
            app.call_from_thread(app.notify, msg, title=f"check {name}", timeout=3)

        def run() -> HostDone:
            try:
                row = check_rig_host(home, name, progress=progress)
            except (PreflightFailed, HostError) as exc:
                return HostDone(name, False, str(exc))
            return HostDone(name, True, f"{name} is ready: {row['slots']} slot(s), {_facts(row)}")

        self.background(f"check {name}", run, exclusive=False)

    def action_add(self) -> None:
        from cambrian_tui.screens.dialogs import TextDialog
        from core.app.hosts import HostError, add_host

        home = self.capp.home

        def done(url: str | None) -> None:
            if not url:
                return

            def run() -> HostDone:
                try:
                    row = add_host(home, url)
                except HostError as exc:
                    return HostDone("add", False, str(exc))
                return HostDone("add", True, f"added {row['name']}"
                                + (" — drained until a check passes" if row["drained"] else ""))

            self.background("add host", run, exclusive=False)

        self.app.push_screen(TextDialog("Add a rig host", "local (this machine's engine), or "
                                        "ssh://[user@]host[:port] — its Docker engine through one OpenSSH "
                                        "forward; key auth; drained until a check passes (rig/README.md).",
                                        placeholder="ssh://user@build-box", empty="an address is needed"), done)

    def action_remove(self) -> None:
        from cambrian_tui.screens.dialogs import ConfirmDialog
        from core.app.hosts import HostError, remove_host

        r = self._selected()
        if r is None:
            return
        name, home = r["name"], self.capp.home

        def done(yes: bool | None) -> None:
            if not yes:
                return

            def run() -> HostDone:
                try:
                    remove_host(home, name)
                except HostError as exc:
                    return HostDone("remove", False, str(exc))
                return HostDone("remove", True, f"removed {name}")

            self.background("remove host", run, exclusive=False)

        self.app.push_screen(ConfirmDialog(f"Forget rig host {name}?", "Runs in flight there finish; "
                                           "no new run goes there."), done)

    def on_host_done(self, message: HostDone) -> None:
        self.busy.discard(message.what)
        self.notify(message.text, title="rig hosts", severity="information" if message.ok else "error",
                    timeout=5 if message.ok else 10)
        self.rows = []  # force a redraw: the state column may have changed
        self.load()
