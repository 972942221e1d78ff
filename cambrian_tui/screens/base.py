"""What every Cambrian screen shares: background loading that posts messages."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, TypeVar

from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.worker import get_current_worker

from cambrian_tui.messages import LoadFailed

if TYPE_CHECKING:
    from cambrian_tui.app import CambrianApp
    from cambrian_tui.data import DataSource


class BackgroundMixin:
    """``self.background(...)`` runs a store read in a thread worker and posts its result.

    ``fn`` runs on a worker thread and returns a Message (or None); the message is posted
    to this screen unless the worker was cancelled meanwhile (``exclusive`` groups cancel
    the previous load when a new one starts). Errors become ``LoadFailed`` messages.
    """

    @property
    def data(self) -> "DataSource":
        return self.app.data  # type: ignore[attr-defined]

    @property
    def capp(self) -> "CambrianApp":
        return self.app  # type: ignore[return-value]

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

    def on_load_failed(self, message: LoadFailed) -> None:
        self.app.notify(f"{message.what}: {message.error}", title="could not load", severity="error",  # type: ignore
                        timeout=8)


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
    def action_focus(self, wid: str) -> None:
        """The number keys' target: a widget id (Screen's own ``focus`` action takes none)."""
        self.query_one(f"#{wid}").focus()


ResultT = TypeVar("ResultT")


class CambrianModal(BackgroundMixin, ModalScreen[ResultT]):
    pass
