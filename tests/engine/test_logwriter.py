"""The engine's batched rig-log writer (a real SQLite file, no Docker)."""

from __future__ import annotations

import time

from core.engine.runner import LOG_FLUSH_LINES, LOG_FLUSH_S, LogWriter
from core.store import Store


def _text(db, n: int) -> str:
    with Store.open(db) as s:
        return "".join(c["text"] for c in s.log_chunks(n))


def test_a_line_followed_by_silence_is_written_without_waiting_for_more(tmp_path):
    db = tmp_path / "c.db"
    Store.open(db).close()
    w = LogWriter(db, 7)
    w("rig", "[rig] first")  # the batch's first line: not written yet (batching)
    w("rig", "[rig] test: python -m pytest -q")  # then the artifact's tests run silently
    deadline = time.monotonic() + 20 * LOG_FLUSH_S + 5
    while "test:" not in _text(db, 7) and time.monotonic() < deadline:
        time.sleep(LOG_FLUSH_S / 5)
    assert _text(db, 7) == "[rig] first\n[rig] test: python -m pytest -q\n"
    w("rig", "[rig] verdict: viable")
    w.close()
    assert _text(db, 7).endswith("[rig] verdict: viable\n")
    w("rig", "late line after close")  # e.g. a rig thread outliving an abort: dropped, no reopen
    time.sleep(2 * LOG_FLUSH_S)
    assert "late line" not in _text(db, 7)
    assert w.store is None


def test_a_full_batch_is_written_at_once(tmp_path):
    db = tmp_path / "c.db"
    Store.open(db).close()
    w = LogWriter(db, 1)
    for i in range(LOG_FLUSH_LINES):
        w("stdout", f"line {i}")
    with Store.open(db) as s:  # no timer needed: the batch filled up
        assert len(s.log_chunks(1)) == 1
    w.close()
    assert _text(db, 1).count("\n") == LOG_FLUSH_LINES
