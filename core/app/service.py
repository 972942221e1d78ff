"""``Cambrian``: one home's reads and commands, as the TUI and the command line use them."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from core.app.commands import HANDLERS
from core.app.reads import Reader
from core.home import db_path


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
