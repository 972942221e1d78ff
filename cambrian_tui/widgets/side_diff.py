"""Side-by-side diff of two spec versions (our own, difflib-based).

Rows are aligned with ``difflib.SequenceMatcher``; replaced lines get intra-line
highlights; FROZEN regions are marked in the gutter (and loudly when a FROZEN line
differs); section names are shown as banners where a section starts and in the
widget's border subtitle for the section at the top of the view. Long unchanged runs
fold to a single row unless *full* mode is on.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cambrian_tui.keys import bindings
from core.app.models import SpecDoc


@dataclass
class DiffRow:
    kind: str  # equal | replace | delete | insert | fold | section
    left_no: int | None = None  # 0-based line indexes
    right_no: int | None = None
    left: str = ""
    right: str = ""
    left_spans: list[tuple[int, int]] = field(default_factory=list)
    right_spans: list[tuple[int, int]] = field(default_factory=list)
    section: str = ""
    text: str = ""  # for fold / section rows


@dataclass
class DiffModel:
    rows: list[DiffRow]
    hunks: list[int]  # row index of each change hunk's first row
    added: int
    removed: int
    changed_sections: list[str]
    frozen_touched: list[str]


def _frozen_map(doc: SpecDoc) -> dict[int, str]:
    out: dict[int, str] = {}
    for start, end, name in doc.frozen:
        for i in range(start, end + 1):
            out[i] = name
    return out


def _char_spans(a: str, b: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if sm.ratio() < 0.3:
        return [(0, len(a))], [(0, len(b))]
    la, lb = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            la.append((i1, i2))
        if j2 > j1:
            lb.append((j1, j2))
    return la, lb


def build_diff(left: SpecDoc, right: SpecDoc, *, context: int | None = 3) -> DiffModel:
    a, b = list(left.lines), list(right.lines)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    raw: list[DiffRow] = []
    added = removed = 0
    changed_sections: list[str] = []
    lf, rf = _frozen_map(left), _frozen_map(right)
    frozen_touched: list[str] = []

    def sec(li: int | None, ri: int | None) -> str:
        if ri is not None and ri < len(right.section_of):
            return right.section_of[ri]
        if li is not None and li < len(left.section_of):
            return left.section_of[li]
        return ""

    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                raw.append(DiffRow("equal", i1 + k, j1 + k, a[i1 + k], b[j1 + k], section=sec(i1 + k, j1 + k)))
            continue
        n = max(i2 - i1, j2 - j1)
        removed += i2 - i1
        added += j2 - j1
        for k in range(n):
            li = i1 + k if i1 + k < i2 else None
            ri = j1 + k if j1 + k < j2 else None
            if li is not None and ri is not None:
                ls, rs = _char_spans(a[li], b[ri])
                row = DiffRow("replace", li, ri, a[li], b[ri], ls, rs, section=sec(li, ri))
            elif li is not None:
                row = DiffRow("delete", li, None, a[li], "", [(0, len(a[li]))], [], section=sec(li, None))
            else:
                row = DiffRow("insert", None, ri, "", b[ri], [], [(0, len(b[ri]))], section=sec(None, ri))
            raw.append(row)
            if row.section and row.section not in changed_sections:
                changed_sections.append(row.section)
            for name in (lf.get(li) if li is not None else None, rf.get(ri) if ri is not None else None):
                if name and name not in frozen_touched:
                    frozen_touched.append(name)

    # fold long unchanged runs
    rows: list[DiffRow] = []
    if context is None:
        rows = raw
    else:
        i = 0
        while i < len(raw):
            if raw[i].kind != "equal":
                rows.append(raw[i])
                i += 1
                continue
            j = i
            while j < len(raw) and raw[j].kind == "equal":
                j += 1
            run = raw[i:j]
            head = context if i > 0 else 0
            tail = context if j < len(raw) else 0
            if len(run) > head + tail + 1:
                rows.extend(run[:head])
                hidden = run[head:len(run) - tail]
                names = []
                for r in hidden:
                    if r.section and r.section not in names:
                        names.append(r.section)
                where = f" · {', '.join(names[:3])}{'…' if len(names) > 3 else ''}" if names else ""
                rows.append(DiffRow("fold", hidden[0].left_no, hidden[0].right_no,
                                    text=f"⋯ {len(hidden)} unchanged lines{where}",
                                    section=hidden[-1].section))
                rows.extend(run[len(run) - tail:] if tail else [])
            else:
                rows.extend(run)
            i = j

    # section banners where a shown row starts a section on either side
    with_banners: list[DiffRow] = []
    for r in rows:
        name = None
        if r.kind != "fold":
            if r.right_no is not None and r.right_no in right.section_starts:
                name = right.section_starts[r.right_no]
            elif r.left_no is not None and r.left_no in left.section_starts:
                name = left.section_starts[r.left_no]
        if name:
            with_banners.append(DiffRow("section", text=name, section=name))
        with_banners.append(r)
    hunks = []
    prev_change = False
    for idx, r in enumerate(with_banners):
        change = r.kind in ("replace", "delete", "insert")
        if change and not prev_change:
            hunks.append(idx)
        if r.kind != "section":
            prev_change = change
    return DiffModel(with_banners, hunks, added, removed, changed_sections, frozen_touched)


GUTTER = 5  # "1234" + frozen mark


def wrap_points(text: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each visual line: word-wrapped, hard-cut when a word is too long."""
    n = len(text)
    if n <= width:
        return [(0, n)]
    out = []
    pos = 0
    while n - pos > width:
        cut = text.rfind(" ", pos, pos + width + 1)
        if cut <= pos + width // 3:
            cut = pos + width
        else:
            cut += 1
        out.append((pos, cut))
        pos = cut
    out.append((pos, n))
    return out


class SideBySideDiff(ScrollView, can_focus=True):
    """Two aligned, soft-wrapped columns; keys: n/p next/previous change, c fold/unfold."""

    BINDINGS = bindings("diff")

    COMPONENT_CLASSES = {
        "diff--gutter", "diff--delete", "diff--insert", "diff--delete-hl", "diff--insert-hl",
        "diff--frozen", "diff--frozen-bad", "diff--fold", "diff--section", "diff--sep", "diff--empty",
    }

    DEFAULT_CSS = """
    SideBySideDiff { background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
    SideBySideDiff > .diff--gutter { color: $text-muted; }
    SideBySideDiff > .diff--delete { background: $error 15%; }
    SideBySideDiff > .diff--insert { background: $success 15%; }
    SideBySideDiff > .diff--delete-hl { background: $error 45%; text-style: bold; }
    SideBySideDiff > .diff--insert-hl { background: $success 45%; text-style: bold; }
    SideBySideDiff > .diff--frozen { color: $accent; text-style: bold; }
    SideBySideDiff > .diff--frozen-bad { color: $error; background: $error 30%; text-style: bold; }
    SideBySideDiff > .diff--fold { color: $text-muted; background: $boost; text-style: italic; }
    SideBySideDiff > .diff--section { color: $text-primary; background: $primary 15%; text-style: bold; }
    SideBySideDiff > .diff--sep { color: $panel-lighten-2; }
    SideBySideDiff > .diff--empty { background: $panel; }
    """

    full: reactive[bool] = reactive(False)

    class SectionChanged(Message):
        def __init__(self, section: str) -> None:
            super().__init__()
            self.section = section

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.left: SpecDoc | None = None
        self.right: SpecDoc | None = None
        self.model: DiffModel | None = None
        self._lf: dict[int, str] = {}
        self._rf: dict[int, str] = {}
        self._section = ""
        self._visual: list[tuple[int, int]] = []  # (row index, wrapped part)
        self._wraps: dict[tuple[int, str], list[tuple[int, int]]] = {}
        self._first_visual: list[int] = []  # row index -> first visual line
        self._layout_width = -1
        self.empty_text = "nothing to compare yet"  # the screen says how to choose

    def set_docs(self, left: SpecDoc, right: SpecDoc) -> None:
        self.left, self.right = left, right
        self._lf, self._rf = _frozen_map(left), _frozen_map(right)
        self._rebuild()
        self.scroll_to(0, 0, animate=False)

    def _rebuild(self) -> None:
        if self.left is None or self.right is None:
            return
        self.model = build_diff(self.left, self.right, context=None if self.full else 3)
        self._layout_width = -1
        self._relayout()
        self._update_section()

    def _half_widths(self) -> tuple[int, int]:
        width = max(self.size.width, 20)
        half = (width - 1) // 2
        return half, width - 1 - half

    def _relayout(self) -> None:
        if self.model is None:
            return
        width = self.size.width
        if width == self._layout_width:
            return
        self._layout_width = width
        lw, rw = self._half_widths()
        lb, rb = max(1, lw - GUTTER), max(1, rw - GUTTER)
        visual: list[tuple[int, int]] = []
        first: list[int] = []
        wraps: dict[tuple[int, str], list[tuple[int, int]]] = {}
        for i, r in enumerate(self.model.rows):
            first.append(len(visual))
            if r.kind in ("fold", "section"):
                parts = 1
            else:
                wl = wraps[(i, "l")] = wrap_points(r.left.expandtabs(4), lb)
                wr = wraps[(i, "r")] = wrap_points(r.right.expandtabs(4), rb)
                parts = max(len(wl), len(wr))
            visual.extend((i, p) for p in range(parts))
        self._wraps = wraps
        self._visual = visual
        self._first_visual = first
        self.virtual_size = Size(width, len(visual))
        self.refresh()

    def watch_full(self) -> None:
        self._rebuild()

    def action_toggle_context(self) -> None:
        self.full = not self.full

    def _goto_row(self, row: int) -> None:
        if row < len(self._first_visual):
            self.scroll_to(y=max(0, self._first_visual[row] - 2), animate=False)

    def _top_row(self) -> int:
        if not self._visual:
            return 0
        return self._visual[min(int(self.scroll_y) + 2, len(self._visual) - 1)][0]

    def action_next_hunk(self) -> None:
        if not self.model or not self.model.hunks:
            self.app.bell()
            return
        top = self._top_row()
        for h in self.model.hunks:
            if h > top:
                self._goto_row(h)
                return
        self._goto_row(self.model.hunks[0])

    def action_prev_hunk(self) -> None:
        if not self.model or not self.model.hunks:
            self.app.bell()
            return
        top = self._top_row()
        for h in reversed(self.model.hunks):
            if h < top:
                self._goto_row(h)
                return
        self._goto_row(self.model.hunks[-1])

    def on_resize(self) -> None:
        self._relayout()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._update_section()

    def _update_section(self) -> None:
        if not self.model or not self._visual:
            return
        row = self._visual[min(int(self.scroll_y), len(self._visual) - 1)][0]
        section = self.model.rows[row].section
        if section != self._section:
            self._section = section
            self.post_message(self.SectionChanged(section))

    # rendering ------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _half(self, no: int | None, text: str, spans: list[tuple[int, int]], kind: str, frozen: str | None,
              other_changed: bool, width: int, part: int, base: Style,
              wraps: list[tuple[int, int]]) -> list[Segment]:
        if no is None:
            return [Segment(" " * width, base + self._style("diff--empty"))]
        body_w = max(1, width - GUTTER)
        text = text.expandtabs(4)
        lo, hi = wraps[part] if part < len(wraps) else (len(text), len(text))
        segs: list[Segment] = []
        num = f"{no + 1:>4}" if part == 0 else "   ·"
        segs.append(Segment(num, base + self._style("diff--gutter")))
        if frozen:
            mark_style = self._style("diff--frozen-bad") if other_changed else self._style("diff--frozen")
            segs.append(Segment("▌", base + mark_style))
        else:
            segs.append(Segment(" ", base))
        line_style = hl_style = base
        if kind == "delete":
            line_style, hl_style = base + self._style("diff--delete"), base + self._style("diff--delete-hl")
        elif kind == "insert":
            line_style, hl_style = base + self._style("diff--insert"), base + self._style("diff--insert-hl")
        chunk = text[lo:hi]
        body: list[Segment] = []
        pos = 0
        for s, e in spans:
            s, e = max(s - lo, 0), min(e - lo, len(chunk))
            if e <= 0 or s >= len(chunk) or e <= s:
                continue
            if s > pos:
                body.append(Segment(chunk[pos:s], line_style))
            body.append(Segment(chunk[s:e], hl_style))
            pos = e
        if pos < len(chunk):
            body.append(Segment(chunk[pos:], line_style))
        segs.extend(Strip(body).crop_extend(0, body_w, line_style))
        return segs

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self.model is None:
            if y == 0:
                msg = self.empty_text
                return Strip([Segment(msg[:width], base + self._style("diff--fold"))]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        if self._layout_width != width:
            self._relayout()
        idx = int(self.scroll_y) + y
        if idx >= len(self._visual):
            return Strip.blank(width, base)
        row_i, part = self._visual[idx]
        r = self.model.rows[row_i]
        if r.kind == "fold":
            st = base + self._style("diff--fold")
            return Strip([Segment(f"  {r.text}"[:width], st)]).extend_cell_length(width, st)
        if r.kind == "section":
            st = base + self._style("diff--section")
            return Strip([Segment(f" § {r.text}"[:width], st)]).extend_cell_length(width, st)
        lw, rw = self._half_widths()
        lkind = "delete" if r.kind in ("delete", "replace") else "equal"
        rkind = "insert" if r.kind in ("insert", "replace") else "equal"
        changed = r.kind != "equal"
        left = self._half(r.left_no, r.left, r.left_spans, lkind,
                          self._lf.get(r.left_no) if r.left_no is not None else None, changed, lw, part, base,
                          self._wraps.get((row_i, "l"), [(0, len(r.left))]))
        right = self._half(r.right_no, r.right, r.right_spans, rkind,
                           self._rf.get(r.right_no) if r.right_no is not None else None, changed, rw, part, base,
                           self._wraps.get((row_i, "r"), [(0, len(r.right))]))
        sep = Segment("│", base + self._style("diff--sep"))
        return Strip(left + [sep] + right).adjust_cell_length(width, base)
