"""Host-side parsing of artifact Python sources.

CPython 3.11's parser is not safe to run from several threads at once: concurrent
`ast.parse` calls can raise SystemError ("AST constructor recursion depth mismatch").
The engine runs rig jobs in threads, so every host-side parse goes through one lock.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse_python(data: bytes | str) -> ast.Module | None:
    """The module's AST, or None when the source does not parse (never raises)."""
    with _LOCK:
        try:
            return ast.parse(data)
        except (SyntaxError, ValueError, RecursionError, MemoryError, SystemError):
            return None
