"""What every Cambrian screen shares: reads and commands in workers that post messages,
the change signal, navigation targets, the footer's order and the "too small" notice."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from cambrian_tui.keys import FOOTER_FIRST
from cambrian_tui.messages import CommandDone, CommandFailed, LoadFailed

if TYPE_CHECKING:
    from cambrian_tui.app import CambrianApp
    from cambrian_tui.nav import Target
    from core.app import Cambrian
    from core.app.reads import Reader

# Below this the main screen cannot show a usable log, tree and status (measured at 60x15)
MIN_WIDTH = 70
MIN_HEIGHT = 18


class TooSmall(Static):
    DEFAULT_CSS = """
    TooSmall {
        display: none; width: 1fr; height: 1fr; content-align: center middle; text-align: center;
        color: $text-warning; background: $surface;
    }
    """


class BackgroundMixin:
    """``self.background(...)`` runs a read in a thread worker and posts its result;
    ``self.command(...)`` runs a typed command (``core.app.commands``) the same way.

    ``fn`` returns a Message (or None); it is posted to this screen unless the worker was
    cancelled meanwhile (``exclusive`` groups cancel the previous load when a new one
    starts). Errors become ``LoadFailed``; refused commands ``CommandFailed``.
    """

    @property
    def capp(self) -> "CambrianApp":
        return self.app  # type: ignore[attr-defined,return-value]

    @property
    def cam(self) -> "Cambrian":
        return self.capp.cam

    @property
    def reads(self) -> "Reader":
        return self.capp.cam.reads

    def background(self, what: str, fn: Callable[[], Message | None], *, group: str | None = None,
                   exclusive: bool = True) -> None:
        target = self

        def run() -> None:
            worker = get_current_worker()
            try:
                msg = fn()
            except Exception as exc:  # shown to the user, never raised into the UI
                msg = LoadFailed(what, exc)
            if msg is not None and not worker.is_cancelled:
                target.post_message(msg)  # type: ignore[attr-defined]

        self.run_worker(run, thread=True, group=group or what, exclusive=exclusive,  # type: ignore[attr-defined]
                        exit_on_error=False, name=what)

    def command(self, what: str, command: Any) -> None:
        """Run a command off the UI thread; CommandDone or CommandFailed comes back."""
        from core.app.commands import CommandRefused

        cam = self.cam

        def run() -> Message:
            try:
                return CommandDone(what, command, cam.run(command))
            except CommandRefused as exc:
                return CommandFailed(what, command, exc.reason, exc.errors)
            except Exception as exc:  # noqa: BLE001 - a bug must not take the TUI down
                return CommandFailed(what, command, f"{type(exc).__name__}: {exc}")

        self.background(what, run, group=f"command-{what}", exclusive=False)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.app.notify(f"{message.what}: {message.error}", title="could not load", severity="error",  # type: ignore
                        timeout=8)

    def on_command_failed(self, message: CommandFailed) -> None:
        self.app.notify(message.reason, title=f"{message.what}: refused", severity="error",  # type: ignore
                        timeout=10)

    # the footer: Help and Quit first (a narrow terminal cuts the end) -------------------------------

    @property
    def active_bindings(self):  # type: ignore[override]
        b = super().active_bindings  # type: ignore[misc]
        first = [k for fid in FOOTER_FIRST for k, ab in b.items() if ab.binding.id == fid]
        return {**{k: b[k] for k in first}, **{k: v for k, v in b.items() if k not in first}}

    # "terminal too small" ---------------------------------------------------------------------

    def _mount_too_small(self) -> None:
        self.mount(TooSmall(id="too-small"))  # type: ignore[attr-defined]

    def _fit(self) -> None:
        """Show the notice instead of a layout that cannot work, and say what is needed."""
        size = self.app.size  # type: ignore[attr-defined]
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        try:
            notice = self.query_one("#too-small", TooSmall)  # type: ignore[attr-defined]
        except Exception:
            return
        if small:
            notice.update(f"Terminal too small: {size.width}×{size.height}\n"
                          f"Cambrian needs {MIN_WIDTH}×{MIN_HEIGHT}: enlarge the window (q quits)")
        hidden: list | None = getattr(self, "_fit_hidden", None)
        if small and hidden is None:
            hidden = [c for c in self.children if c is not notice and c.display]  # type: ignore[attr-defined]
            for child in hidden:
                child.display = False
            self._fit_hidden = hidden
            notice.display = True
        elif not small and hidden is not None:
            for child in hidden:  # what the screen itself hid stays hidden
                child.display = True
            self._fit_hidden = None
            notice.display = False
        self.set_class(small, "-too-small")  # type: ignore[attr-defined]


ResultT = TypeVar("ResultT")


class LivenessCheck:
    """When to reload although the database did not change. A live engine heartbeats every
    2 s, so its screen reloads on change anyway; an engine that was SIGKILLed writes nothing,
    and without this its "running ●" would stay until something else touched the database."""

    QUIET_S = 3.0

    def __init__(self) -> None:
        self.last = time.monotonic()

    def reloaded(self) -> None:
        self.last = time.monotonic()

    def due(self, showing_alive: bool) -> bool:
        return showing_alive and time.monotonic() - self.last >= self.QUIET_S


class CambrianScreen(BackgroundMixin, Screen):
    """A top-level screen (or one pushed on a mode, like the inspector).

    ``WATCH``: the change topics (``core.app.changes``) it shows. When one of them moves,
    ``on_data(topics)`` runs at once if the screen is on top, else when it comes back —
    a spec version stored while you look at the campaigns is in F3 when you get there.
    """

    WATCH: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._stale: set[str] = set()

    def on_mount(self) -> None:
        self._mount_too_small()
        if self.WATCH:
            self.capp.data_signal.subscribe(self, self._data_changed)
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self._fit()

    def _data_changed(self, topics: frozenset[str]) -> None:
        hit = topics & self.WATCH
        if not hit:
            return
        if self.is_current:
            self.on_data(frozenset(hit))
        else:
            self._stale |= hit

    def on_screen_resume(self) -> None:
        self._fit()
        if self._stale:
            stale, self._stale = frozenset(self._stale), set()
            self.on_data(stale)

    def on_data(self, topics: frozenset[str]) -> None:
        """Reload what the changed topics show (screens override)."""

    def navigate(self, target: "Target") -> None:
        """Show a navigation target (screens that are a mode's base override)."""

    def action_focus(self, wid: str) -> None:
        """The number keys' target: a widget id (Screen's own ``focus`` action takes none)."""
        self.query_one(f"#{wid}").focus()


class CambrianModal(BackgroundMixin, ModalScreen[ResultT]):
    def on_mount(self) -> None:
        self._mount_too_small()
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self._fit()
