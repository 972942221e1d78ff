"""Viability reports and artifacts as the inspector shows them (pure).

A failed vector or contract appears twice in a report: in its stage's ``vectors`` /
``contracts`` list (with the HTTP status and ``body_excerpt``) and as a diagnostics
failure named ``vector:NAME`` (what the summary counts). ``check_rows`` lists each check
once, with everything both places know about it.
"""

from __future__ import annotations

import difflib
from typing import Any

from core.app.fmt import human_ms
from core.app.models import STAGES, CheckRow, FileDiff

_PROBE_KINDS = {"vector": "vectors", "contract": "contracts"}


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def check_rows(report: dict[str, Any] | None) -> list[CheckRow]:
    """Stage rows with their failed tests, vectors and contracts nested beneath."""
    if not report:
        return []
    checks = report.get("checks") or {}
    diag = report.get("diagnostics") or {}
    rows: list[CheckRow] = []
    for stage in list(STAGES) + [s for s in checks if s not in STAGES]:
        chk = checks.get(stage)
        if chk is None:
            rows.append(CheckRow(f"stage:{stage}", 0, "stage", stage, stage, None, "", "not run"))
            continue
        here = diag.get("stage") == stage
        detail = ""
        if chk.get("tests_run") is not None:
            detail = f"{chk.get('tests_passed', 0)}/{chk['tests_run']} tests passed"
        if here and diag.get("summary"):
            detail = (detail + " · " if detail else "") + str(diag["summary"])
        if here and diag.get("exit_code") is not None:
            detail += f" · exit {diag['exit_code']}"
        rows.append(CheckRow(f"stage:{stage}", 0, "stage", stage, stage, bool(chk.get("passed")),
                             human_ms(chk.get("duration_ms")), detail,
                             error=str(diag.get("summary", "")) if here else ""))
        # probes of this stage by (kind, name), so a diagnostics failure can join its row
        probes: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, key in _PROBE_KINDS.items():
            for r in chk.get(key) or []:
                probes.setdefault((kind, str(r.get("name", "?"))), r)
        joined: dict[tuple[str, str], str] = {}
        if here:
            for i, f in enumerate(diag.get("failures") or []):
                test = str(f.get("test", "?"))
                kind, sep, name = test.partition(":")
                if sep and (kind, name) in probes:
                    joined[(kind, name)] = str(f.get("error") or "")
                    continue  # listed once, below, with its probe's status and body
                loc = f.get("file") or ""
                if loc and f.get("line") is not None:
                    loc = f"{loc}:{f['line']}"
                err = str(f.get("error", ""))
                row_kind = kind if sep and kind in ("endpoint", "vector", "contract") else "test"
                rows.append(CheckRow(f"fail:{stage}:{i}", 1, row_kind, stage, test, False, "",
                                     _first_line(err), error=err, location=loc))
        for kind, key in _PROBE_KINDS.items():
            for i, r in enumerate(chk.get(key) or []):
                name = str(r.get("name", "?"))
                err = str(r.get("error") or joined.get((kind, name)) or "")
                status = r.get("status")
                det = _first_line(err) or (f"status {status}" if status is not None else "")
                if status is not None and err:
                    det = f"status {status} · {det}"
                rows.append(CheckRow(f"{key}:{stage}:{i}", 1, kind, stage, f"{kind} {name}",
                                     bool(r.get("passed")), human_ms(r.get("ms")) if r.get("ms") else "",
                                     det, error=err, body_excerpt=str(r.get("body_excerpt") or "")))
    return rows


def _decode(data: bytes) -> list[str] | None:
    if b"\0" in data[:4096]:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def file_diffs(old: dict[str, bytes] | None, new: dict[str, bytes], context: int = 3) -> list[FileDiff]:
    """Per-file unified diffs of an artifact against its parent's (changed files first)."""
    old = old or {}
    out: list[FileDiff] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            out.append(FileDiff(path, "same", 0, 0, ()))
            continue
        status = "added" if a is None else "removed" if b is None else "modified"
        la = _decode(a) if a is not None else []
        lb = _decode(b) if b is not None else []
        if la is None or lb is None:
            out.append(FileDiff(path, status, 0, 0, ("(binary file differs)",)))
            continue
        lines = tuple(difflib.unified_diff(la, lb, f"parent/{path}", f"this/{path}", n=context, lineterm=""))
        added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
        out.append(FileDiff(path, status, added, removed, lines))
    order = {"modified": 0, "added": 1, "removed": 2, "same": 3}
    out.sort(key=lambda d: (order[d.status], d.path))
    return out
