"""Spec texts with the structure the diff views mark: sections and FROZEN blocks (pure)."""

from __future__ import annotations

import re
from typing import Iterable

from core.app.models import SpecDoc

_HEADING_RE = re.compile(r"^ {0,3}(#{1,2})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


def make_spec_doc(h: str, title: str, text: str) -> SpecDoc:
    lines = tuple(text.splitlines())
    section_starts: dict[int, str] = {}
    frozen: list[tuple[int, int, str]] = []
    try:
        from core.spec import find_frozen, parse_spec

        try:
            spec = parse_spec(text)
            for s in spec.sections:
                section_starts[s.start_line - 1] = s.name
        except Exception:
            section_starts = _scan_headings(lines)
        blocks, _issues = find_frozen(text)
        frozen = [(b.start_line - 1, b.end_line - 1, b.name) for b in blocks]
    except Exception:
        section_starts = _scan_headings(lines)
        frozen = _scan_frozen(lines)
    section_of: list[str] = []
    current = ""
    for i in range(len(lines)):
        if i in section_starts:
            current = section_starts[i]
        section_of.append(current)
    return SpecDoc(hash=h, title=title, text=text, lines=lines, section_starts=section_starts,
                   section_of=tuple(section_of), frozen=tuple(frozen))


def _scan_headings(lines: Iterable[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    fence = None
    for i, line in enumerate(lines):
        m = _FENCE_RE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)[0]
            elif m.group(1)[0] == fence:
                fence = None
            continue
        if fence is None:
            h = _HEADING_RE.match(line)
            if h and len(h.group(1)) == 2:
                out[i] = h.group(2)
    return out


_FROZEN_RE = re.compile(r"^[ \t]*<!--[ \t]*(BEGIN|END)[ \t]+FROZEN:[ \t]*([a-z0-9-]+)[ \t]*-->")


def _scan_frozen(lines: Iterable[str]) -> list[tuple[int, int, str]]:
    out, open_ = [], {}
    for i, line in enumerate(lines):
        m = _FROZEN_RE.match(line)
        if m:
            if m.group(1) == "BEGIN":
                open_[m.group(2)] = i
            elif m.group(2) in open_:
                out.append((open_.pop(m.group(2)), i, m.group(2)))
    return out
