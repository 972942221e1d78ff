"""The Cambrian TUI (Textual): the product's face (DESIGN §11).

Process model (DESIGN §3): this app only reads SQLite and inserts commands; engines run
detached, so quitting (or losing the terminal) never stops a campaign, and starting the
app attaches to whatever is running. All store reads run in thread workers
(``cambrian_tui.data``); a watcher thread polls ``PRAGMA data_version`` and the app
publishes ``db_changed_signal`` on the UI thread when another process committed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.signal import Signal
from textual.worker import get_current_worker

from cambrian_tui.data import DataSource, SearchHit
from cambrian_tui.messages import CampaignStarted, DbChanged
from cambrian_tui.providers import CambrianCommands, JumpCommands
from cambrian_tui.screens import MODE_REGISTRY

DEFAULT_THEME = "textual-dark"
PREFS_FILE = "tui.json"


class CambrianApp(App):
    TITLE = "Cambrian"
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    COMMANDS = App.COMMANDS | {CambrianCommands, JumpCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    DEFAULT_MODE = "main"  # start straight in the main screen (no mode switch at start-up)

    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", key_display="F1/?", tooltip="Every key on this screen"),
        Binding("q", "quit", "Quit", tooltip="Quit the TUI (campaigns keep running)"),
        Binding("ctrl+t", "change_theme", "Theme", show=False, tooltip="Pick a theme"),
        Binding("ctrl+n", "new_campaign", "New campaign", show=False, tooltip="Start a new campaign"),
        Binding("ctrl+f", "search", "Search", show=False, tooltip="Search everything"),
        Binding("ctrl+l", "redraw", "Redraw", show=False, tooltip="Redraw the whole screen"),
    ]

    def __init__(self, home: Path, *, live: bool = True, spec_dir: Path | None = None,
                 theme: str | None = None, poll_interval: float = 0.3, show_home: bool = True,
                 initial_mode: str = "main", **kw) -> None:
        """``live=False`` is the snapshot mode: no watcher thread, no refresh timers
        (loads still run once in workers), no theme persistence."""
        super().__init__(**kw)
        self.home = Path(home)
        self.live = live
        self.poll_interval = poll_interval
        self.show_home = show_home
        if spec_dir is None:
            from core.home import spec_dir as default_spec_dir

            spec_dir = default_spec_dir()
        self.data = DataSource(self.home, spec_dir=spec_dir)
        self.db_changed_signal: Signal[int] = Signal(self, "db-changed")
        self._stop = threading.Event()
        self._initial_mode = initial_mode
        self._theme_fixed = theme is not None
        self.theme = theme or (self._load_prefs().get("theme") if live else None) or DEFAULT_THEME
        for spec in MODE_REGISTRY.values():
            self.add_mode(spec.name, spec.make)
            self.bind(spec.key, f"switch_mode('{spec.name}')", description=spec.title, show=False)

    # lifecycle -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._initial_mode != self.DEFAULT_MODE:
            self.switch_mode(self._initial_mode)
        if self.live:
            self._watch_db()

    def on_unmount(self) -> None:
        self._stop.set()
        self.data.close()

    @work(thread=True, exclusive=True, group="db-watch", exit_on_error=False, name="db-watch")
    def _watch_db(self) -> None:
        worker = get_current_worker()
        last: int | None = None
        while not worker.is_cancelled and not self._stop.is_set():
            try:
                version = self.data.data_version()
            except Exception:
                version = None
            if version is not None and last is not None and version != last:
                self.post_message(DbChanged(version))
            if version is not None:
                last = version
            self._stop.wait(self.poll_interval)

    def on_db_changed(self, message: DbChanged) -> None:
        self.db_changed_signal.publish(message.version)

    # preferences -----------------------------------------------------------------------------

    def _prefs_path(self) -> Path:
        return self.home / PREFS_FILE

    def _load_prefs(self) -> dict:
        try:
            return json.loads(self._prefs_path().read_text())
        except (OSError, ValueError):
            return {}

    def watch_theme(self, theme: str) -> None:
        if not self.live or self._theme_fixed:
            return
        try:
            prefs = self._load_prefs()
            if prefs.get("theme") != theme:
                prefs["theme"] = theme
                self._prefs_path().write_text(json.dumps(prefs, indent=2))
        except OSError:
            pass

    # actions -------------------------------------------------------------------------------

    def action_redraw(self) -> None:
        self.screen.refresh(layout=True, repaint=True)
        for widget in self.screen.walk_children():
            widget.refresh()

    def action_help(self) -> None:
        from cambrian_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.screen))

    def action_new_campaign(self) -> None:
        from cambrian_tui.screens.new_campaign import NewCampaignScreen

        def started(campaign_id: str | None) -> None:
            if campaign_id:
                self.notify(f"campaign {campaign_id} started (detached: it keeps running if you quit)",
                            title="campaign started", timeout=6)
                self._main_screen_call("campaign_started", campaign_id)

        main = self._main_screen()
        current = main.current_campaign() if main is not None else None
        self.push_screen(NewCampaignScreen(default_spec=current.spec_hash if current else None), started)

    def action_search(self) -> None:
        from cambrian_tui.screens.dialogs import SearchDialog

        def picked(hit: SearchHit | None) -> None:
            if hit is not None:
                self.open_hit(hit)

        self.push_screen(SearchDialog(), picked)

    def open_hit(self, hit: SearchHit) -> None:
        if hit.kind == "generation":
            self.jump_to_generation(int(hit.key))
        elif hit.kind == "campaign":
            self._main_screen_call("select_campaign", hit.key)
        elif hit.kind == "spec":
            self.open_spec(hit.key)
        elif hit.kind == "evolution":
            self.switch_mode("evolution")
            self.call_after_refresh(self._current_screen_call, "select_run", hit.key)

    def open_spec(self, spec_hash: str) -> None:
        self.switch_mode("spec")
        self.call_after_refresh(self._current_screen_call, "select_version", spec_hash)

    def jump_to_generation(self, n: int) -> None:
        if self.current_mode != "main":
            self.switch_mode("main")
        main = self._main_screen()
        # close an inspector or dialog on top of main
        while self.screen is not main and len(self.screen_stack) > 1:
            self.pop_screen()
        if main is not None:
            main.jump_to_generation(n)

    def _main_screen(self):
        from cambrian_tui.screens.main import MainScreen

        try:
            stack = self._screen_stacks.get("main") or []
        except AttributeError:
            stack = []
        for screen in stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _main_screen_call(self, method: str, *args) -> None:
        if self.current_mode != "main":
            self.switch_mode("main")
        main = self._main_screen()
        if main is not None:
            getattr(main, method)(*args)

    def _current_screen_call(self, method: str, *args) -> None:
        """Call ``method`` on the current screen (after a mode switch) if it has one."""
        screen = self.screen
        if hasattr(screen, method):
            getattr(screen, method)(*args)

    def on_campaign_started(self, message: CampaignStarted) -> None:
        self._main_screen_call("campaign_started", message.campaign_id)


def run_app(home: Path, mouse: bool = True) -> int:
    """Run the TUI until the user quits. Campaigns keep running after it exits."""
    app = CambrianApp(home)
    app.run(mouse=mouse)
    return app.return_code or 0  # non-zero when the TUI stopped on an error
