"""``Cambrian``: one home's reads and commands, as the TUI and the command line use them."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from core.app.commands import HANDLERS
from core.app.models import TERMINAL_STATES
from core.app.reads import Reader
from core.home import db_path

if TYPE_CHECKING:
    from core.detached import FollowResult


class Cambrian:
    """Reads (``.reads``, thread-safe) and typed commands (``.run``) on one runtime home."""

    def __init__(self, home: Path, spec_dir: Path | None = None):
        if spec_dir is None:
            from core.home import spec_dir as default_spec_dir

            spec_dir = default_spec_dir()
        self.home = Path(home)
        self.spec_dir = spec_dir
        self.reads = Reader(self.home, spec_dir)

    def run(self, command: Any) -> Any:
        """Carry out a typed command (``core.app.commands``): its result, or CommandRefused."""
        handler = HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {type(command).__name__}")
        return handler(self, command)

    def wait_campaign(self, campaign_id: str, on_update: Callable[[dict], None] | None = None,
                      poll_s: float = 1.0) -> "FollowResult[dict]":
        """Follow a campaign (its ``campaign status --json`` view) until it ends or its engine
        is gone (``gone``: ``campaign resume`` continues it)."""
        from core.detached import follow

        return follow(lambda: self.reads.campaign_status(campaign_id),
                      finished=lambda st: st["state"] in TERMINAL_STATES, alive=lambda st: st["engine_alive"],
                      on_update=on_update, poll_s=poll_s)

    def wait_run(self, run_id: str, on_update: Callable[[dict], None] | None = None,
                 poll_s: float = 1.0) -> "FollowResult[dict]":
        """Follow an evolution run (``evolve status --json``) until it ends or its process is gone."""
        from core.detached import follow

        return follow(lambda: self.reads.evolution_status(run_id),
                      finished=lambda st: st["state"] in TERMINAL_STATES, alive=lambda st: st["engine_alive"],
                      on_update=on_update, poll_s=poll_s)

    @contextmanager
    def writer(self) -> Iterator[Any]:
        """A connection of its own for one command's writes (closed after)."""
        from core.store import Store

        with Store.open(db_path(self.home)) as store:
            yield store

    def close(self) -> None:
        self.reads.close()

    def __enter__(self) -> "Cambrian":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
