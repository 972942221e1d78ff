"""The Cambrian TUI (Textual): the product's face (DESIGN §11).

Process model (DESIGN §3): this app reads and commands through the application layer
(``core.app``); engines run detached, so quitting (or losing the terminal) never stops a
campaign, and starting the app attaches to whatever is running. Reads and commands run in
thread workers; a watcher thread polls the change signal and the app publishes the topics
that moved (``data_signal``) on the UI thread. Keys come from ``cambrian_tui.keys``,
remapped by the settings file (``cambrian_tui.settings``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from textual import work
from textual.app import App
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import get_current_worker

from cambrian_tui.keys import bindings
from cambrian_tui.messages import DataChanged
from cambrian_tui.nav import MODE_OF, ShowCampaign, Target
from cambrian_tui.providers import CambrianCommands, JumpCommands
from cambrian_tui.screens import MODE_REGISTRY, ModeSpec
from cambrian_tui.settings import TuiSettings
from core.app import Cambrian

DEFAULT_THEME = "textual-dark"
PREFS_FILE = "tui.json"  # state the app remembers (the last theme); settings live in tui.toml


class CambrianApp(App):
    TITLE = "Cambrian"
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    COMMANDS = App.COMMANDS | {CambrianCommands, JumpCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    DEFAULT_MODE = "main"  # start straight in the main screen (no mode switch at start-up)
    BINDINGS = bindings("app")

    def __init__(self, home: Path, *, live: bool = True, spec_dir: Path | None = None,
                 theme: str | None = None, poll_interval: float | None = None, show_home: bool = True,
                 initial_mode: str = "main", settings: TuiSettings | None = None, refresh_interval: float = 1.0,
                 **kw) -> None:
        """``live=False`` is the snapshot mode: no watcher thread, no refresh timers
        (loads still run once in workers), no theme persistence."""
        super().__init__(**kw)
        self.settings = settings or TuiSettings()
        self.home = Path(home)
        self.live = live
        self.poll_interval = poll_interval if poll_interval is not None else self.settings.poll_interval_s
        self.refresh_interval = refresh_interval  # at most one reload of a screen's views per interval
        self.show_home = show_home
        self.cam = Cambrian(self.home, spec_dir=spec_dir)
        self.data_signal: Signal[frozenset[str]] = Signal(self, "data-changed")
        self._stop = threading.Event()
        self._initial_mode = initial_mode
        self._mode_screens: dict[str, Screen] = {}
        self.starting = 0  # start commands in flight (their campaign is shown when they finish)
        self._theme_fixed = theme is not None or self.settings.theme is not None
        self.theme = (theme or self.settings.theme or (self._load_prefs().get("theme") if live else None)
                      or DEFAULT_THEME)
        for spec in MODE_REGISTRY.values():
            self.add_mode(spec.name, lambda spec=spec: self._make_mode_screen(spec))
            if f"app.mode.{spec.name}" not in {b.id for b in self.BINDINGS}:  # a mode registered later
                self.bind(spec.key, f"switch_mode('{spec.name}')", description=spec.title, show=False)
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)

    def _make_mode_screen(self, spec: ModeSpec) -> Screen:
        screen = spec.make()
        self._mode_screens[spec.name] = screen
        return screen

    # lifecycle -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._initial_mode != self.DEFAULT_MODE:
            self.switch_mode(self._initial_mode)
        if self.live:
            self._watch_changes()

    def on_unmount(self) -> None:
        self._stop.set()
        self.cam.close()

    @work(thread=True, exclusive=True, group="db-watch", exit_on_error=False, name="db-watch")
    def _watch_changes(self) -> None:
        from core.app.changes import ChangeWatcher

        worker = get_current_worker()
        watcher = ChangeWatcher(self.cam.reads)
        while not worker.is_cancelled and not self._stop.is_set():
            try:
                changes = watcher.poll()
            except Exception:  # noqa: BLE001 - a busy or vanished database: try again
                changes = None
            if changes is not None:
                self.post_message(DataChanged(changes))
            self._stop.wait(self.poll_interval)

    def on_data_changed(self, message: DataChanged) -> None:
        self.data_signal.publish(message.changes.topics)

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

    def effective_keys(self, key_id: str) -> str:
        """The keys bound to an id now (the settings' keymap over the defaults)."""
        from cambrian_tui.keys import effective

        return effective(key_id, self.settings.keymap)

    def key_label(self, key_id: str) -> str:
        """How the first key of an id is shown ("l", "^r", "F1")."""
        from textual.binding import Binding

        first = self.effective_keys(key_id).split(",")[0]
        return self.get_key_display(Binding(first, "noop"))

    # navigation ------------------------------------------------------------------------------

    def mode_screen(self, mode: str) -> Screen | None:
        """The base screen of a mode, once it was shown."""
        return self._mode_screens.get(mode)

    def navigate(self, target: Target) -> None:
        """Show ``target``: switch to the mode that shows it, close what is open on top of
        that mode's screen, and hand the target over (it waits there if still loading)."""
        mode = MODE_OF[type(target)]
        if self.current_mode != mode:
            self.switch_mode(mode)
        self.call_after_refresh(self._deliver, mode, target)

    def _deliver(self, mode: str, target: Target) -> None:
        base = self.mode_screen(mode)
        if base is None:
            return
        while self.screen is not base and len(self.screen_stack) > 1:
            self.pop_screen()
        base.navigate(target)  # type: ignore[attr-defined]

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
                self.navigate(ShowCampaign(campaign_id))

        main = self.mode_screen("main")
        current = main.current_campaign() if main is not None else None  # type: ignore[attr-defined]
        self.push_screen(NewCampaignScreen(current), started)

    def action_search(self) -> None:
        from cambrian_tui.nav import target_of_hit
        from cambrian_tui.screens.dialogs import SearchDialog

        def picked(hit) -> None:
            if hit is not None:
                self.navigate(target_of_hit(hit.kind, hit.key))

        self.push_screen(SearchDialog(), picked)


def run_app(home: Path, mouse: bool = True, settings: TuiSettings | None = None) -> int:
    """Run the TUI until the user quits. Campaigns keep running after it exits."""
    app = CambrianApp(home, settings=settings)
    app.run(mouse=mouse)
    return app.return_code or 0  # non-zero when the TUI stopped on an error
