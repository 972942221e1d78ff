"""Print a snapshot SVG (pytest-textual-snapshot) as the text it shows, to look at it in a
terminal: ``python tests/tui/snaptext.py tests/tui/__snapshots__/test_snapshots/NAME.svg``."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path


def svg_text(svg: str) -> str:
    """The terminal's lines: Rich's SVG export places each span of text at (x, y)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg, re.S):
        x, y, text = float(m.group(1)), float(m.group(2)), html.unescape(m.group(3))
        rows.setdefault(y, []).append((x, text.replace("\xa0", " ")))
    out = []
    char_w = None
    for y in sorted(rows):
        spans = sorted(rows[y])
        line = ""
        for x, text in spans:
            if char_w is None and len(spans) > 1:
                char_w = 12.2
            col = int(round(x / (char_w or 12.2)))
            line = line.ljust(col) + text
        out.append(line.rstrip())
    return "\n".join(out)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"== {arg}")
        print(svg_text(Path(arg).read_text()))
