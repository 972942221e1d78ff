"""The Cambrian TUI (Textual). Minimal first screen: specs and stored history."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from core.home import db_path, spec_dir


class CambrianApp(App):
    TITLE = "Cambrian"
    CSS = """
    #specs { width: 48; border: round $primary; }
    #history { border: round $secondary; }
    #status { height: 1; dock: bottom; background: $boost; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, home: Path, **kw):
        super().__init__(**kw)
        self.home = home

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="specs"):
                yield DataTable(id="spec-table", cursor_type="row")
            with Vertical(id="history"):
                yield DataTable(id="gen-table", cursor_type="row")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#specs").border_title = "Specs"
        self.query_one("#history").border_title = "Generations"
        self.query_one("#spec-table", DataTable).add_columns("spec", "hash", "origin")
        self.query_one("#gen-table", DataTable).add_columns("gen", "parent", "outcome", "status", "stage")
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        from core.store import Store
        from rig.hashing import sha256_hex

        shipped = [(p.stem, sha256_hex(p.read_bytes()), "shipped")
                   for p in sorted(spec_dir().glob("*.md")) if p.name.lower() != "readme.md"]
        with Store.open(db_path(self.home)) as store:
            stored = [(v.label or "-", v.hash, v.origin.value) for v in store.spec_versions()]
            gens = store.generations(limit=2000)
            counts = store.outcome_counts()
        self.call_from_thread(self._show, shipped + stored, gens, counts)

    def _show(self, specs, gens, counts) -> None:
        st = self.query_one("#spec-table", DataTable)
        st.clear()
        for name, h, origin in specs:
            st.add_row(name, h[7:19], origin)
        gt = self.query_one("#gen-table", DataTable)
        gt.clear()
        for g in gens:
            gt.add_row(str(g.number), "-" if g.parent is None else str(g.parent), g.outcome.value,
                       g.status or "-", g.failure_stage or "-")
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no generations yet"
        self.query_one("#status", Static).update(f"home {self.home}  ·  {summary}")


def run_app(home: Path, mouse: bool = True) -> int:
    CambrianApp(home).run(mouse=mouse)
    return 0
