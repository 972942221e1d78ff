"""Why a campaign or an evolution run stopped, in words a person can act on: a full disk
(recognised in an exception's chain) and the reason a restarted one carries. Shared by the
campaign engine and the evolution loop."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def out_of_space(exc: BaseException) -> bool:
    """A full disk or quota anywhere in the exception's chain (an errno, or the text Docker
    and SQLite use when the error reaches us as a message)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _NO_SPACE_ERRNOS:
            return True
        if any(t in str(e).lower() for t in _NO_SPACE_TEXTS):
            return True
        e = e.__cause__ or e.__context__
    return False


def no_space_reason(what: str, home: Path | str, thing: str = "campaign") -> str:
    return (f"out of disk space ({what}); free space under {home} (and Docker's data root), "
            f"then resume the {thing}")


def resumed_reason(before: dict[str, Any]) -> str | None:
    """The reason a restarted campaign or run carries: the one it stopped for would read as
    current."""
    if before["state"] not in ("stopped", "crashed"):
        return None
    return f"resumed after it {before['state']}: {before.get('reason') or '-'}"[:500]
