"""A bounded, virtual log view: only visible lines are rendered.

Lines arrive in batches (from the log-chunk table, via a worker); the view keeps the
last ``max_lines`` of them. In *follow* mode it sticks to the tail; when paused it holds
still (the view is re-anchored when old lines fall off the front) and counts what
arrived meanwhile.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


class LogView(ScrollView, can_focus=True):
    """Virtual log of (stream, text) lines."""

    COMPONENT_CLASSES = {"log-view--stderr", "log-view--rig", "log-view--empty"}

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
    }
    LogView > .log-view--stderr { color: $text-error; }
    LogView > .log-view--rig { color: $text-accent; text-style: italic; }
    LogView > .log-view--empty { color: $text-muted; text-style: italic; }
    """

    follow: reactive[bool] = reactive(True)

    def __init__(self, max_lines: int = 10_000, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max_lines
        self._buf: list[tuple[str, str]] = []
        self._base = 0
        self._width = 0
        self.unseen = 0
        self.total = 0
        self.empty_text = "no output yet"
        self._restick_pending = False

    # data ------------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self._buf) - self._base

    def lines(self) -> list[tuple[str, str]]:
        return self._buf[self._base:]

    def clear(self) -> None:
        self._buf = []
        self._base = 0
        self._width = 0
        self.unseen = 0
        self.total = 0
        self.virtual_size = Size(0, 0)
        self.scroll_x = self.scroll_y = 0
        self.refresh()

    def append(self, lines: list[tuple[str, str]]) -> None:
        if not lines:
            return
        if len(lines) > self.max_lines:
            lines = lines[-self.max_lines:]
        self.total += len(lines)
        width = self._width
        for _, text in lines:
            n = len(text)
            if n > width:
                width = min(n, 2000)
        self._width = width
        self._buf.extend(lines)
        dropped = 0
        count = len(self._buf) - self._base
        if count > self.max_lines:
            dropped = count - self.max_lines
            self._base += dropped
            if self._base > self.max_lines:
                del self._buf[:self._base]
                self._base = 0
        self.virtual_size = Size(self._width + 1, self.line_count)
        if self.follow:
            self._stick_to_end()
        else:
            self.unseen += len(lines)
            if dropped:
                self.scroll_y = max(0, self.scroll_y - dropped)
        self.refresh()

    def _stick_to_end(self) -> None:
        # set directly: scroll_to() is refused until the next layout adds the scrollbar;
        # once laid out (a horizontal scrollbar may take a row) stick again
        self.scroll_y = max(0, self.line_count - self.scrollable_content_region.height)
        if not self._restick_pending:
            self._restick_pending = True
            self.call_after_refresh(self._restick)

    def _restick(self) -> None:
        self._restick_pending = False
        if self.follow:
            self.scroll_y = self.max_scroll_y

    def set_lines(self, lines: list[tuple[str, str]]) -> None:
        self.clear()
        self.append(lines)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.unseen = 0
            self._stick_to_end()

    def on_resize(self) -> None:
        if self.follow:
            self._stick_to_end()

    # rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base_style = self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        if self.line_count == 0:
            if y == 0 and self.empty_text:
                style = base_style + self.get_component_rich_style("log-view--empty", partial=True)
                return Strip([Segment(self.empty_text[:width], style)]).extend_cell_length(width, base_style)
            return Strip.blank(width, base_style)
        idx = scroll_y + y
        if idx >= self.line_count:
            return Strip.blank(width, base_style)
        stream, text = self._buf[self._base + idx]
        if "\t" in text:
            text = text.expandtabs(4)
        style: Style = base_style
        if stream == "stderr":
            style = base_style + self.get_component_rich_style("log-view--stderr", partial=True)
        elif stream not in ("stdout", ""):
            style = base_style + self.get_component_rich_style("log-view--rig", partial=True)
        strip = Strip([Segment(text, style)])
        return strip.crop_extend(scroll_x, scroll_x + width, base_style)

    # keys -------------------------------------------------------------------------------

    def on_mouse_scroll_up(self, event) -> None:  # the user scrolled back: stop following
        self.follow = False

    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = False
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow = True
