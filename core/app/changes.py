"""The change signal screens watch: which topics moved since the last look.

``PRAGMA data_version`` moves whenever another connection commits and costs no table
read; only then are the per-topic counters (schema M6, bumped by triggers) read, to say
*what* changed. A screen reloads for the topics it shows: a spec version stored by an
evolution run wakes the Specs screen, a log line does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.schema_sql import CHANGE_TOPICS

TOPICS: frozenset[str] = frozenset(CHANGE_TOPICS)


@dataclass(frozen=True)
class Changes:
    topics: frozenset[str]
    versions: dict[str, int]


class ChangeWatcher:
    """Poll from one thread; ``poll()`` returns the topics changed since the last call
    (nothing on the first, which only records where things stand)."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self._commit: int | None = None
        self._versions: dict[str, int] | None = None

    def poll(self) -> Changes | None:
        commit = self.reader.commit_version()
        if commit == self._commit and self._versions is not None:
            return None
        self._commit = commit
        versions = self.reader.data_versions()
        before, self._versions = self._versions, versions
        if before is None:
            return None
        moved = frozenset(t for t, v in versions.items() if before.get(t) != v)
        return Changes(moved, versions) if moved else None
