"""F1 / `?`: every key of the current screen, its widgets and the app, grouped — the keys in
effect, after the settings file's keymap (``cambrian_tui.settings``)."""

from __future__ import annotations

from pathlib import Path

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Label, Static

from cambrian_tui.keys import bindings
from cambrian_tui.screens.base import CambrianModal

GROUP_NAMES = {
    "GenerationTree": "Generation tree",
    "LogView": "Rig log",
    "SideBySideDiff": "Spec diff",
    "FitnessCharts": "Charts",
}


@dataclass(frozen=True)
class KeyRow:
    keys: str
    description: str


def _title(node: DOMNode) -> str:
    name = type(node).__name__
    if name in GROUP_NAMES:
        return GROUP_NAMES[name]
    title = getattr(node, "HELP_TITLE", None)
    if title:
        return str(title)
    return name.removesuffix("Screen").replace("_", " ") or name


NAVIGATION = [
    KeyRow("tab shift+tab", "Move focus between panels"),
    KeyRow("↑ ↓ pgup pgdn", "Move in lists, tables, trees and logs"),
    KeyRow("home end", "First / last line"),
    KeyRow("enter", "Open / select"),
    KeyRow("space ← →", "Expand / collapse a tree node"),
]


def own_bindings(node: DOMNode) -> list[Binding]:
    """Bindings declared by Cambrian classes (not the generic ones Textual widgets inherit)."""
    out: list[Binding] = []
    for cls in reversed(type(node).__mro__):
        if cls.__module__.startswith("cambrian_tui") and "BINDINGS" in cls.__dict__:
            for b in cls.__dict__["BINDINGS"]:
                out.append(b if isinstance(b, Binding) else Binding(*b))
    return out


def _rows(app, bindings: list[Binding]) -> list[KeyRow]:
    rows: dict[str, list[str]] = {}
    order: list[str] = []
    keymap = getattr(getattr(app, "settings", None), "keymap", {}) or {}
    for b in bindings:
        desc = b.tooltip or b.description or b.action
        if desc not in rows:
            rows[desc] = []
            order.append(desc)
        keys = keymap.get(b.id) if b.id else None
        if b.key_display and not keys:
            shown = [b.key_display]
        else:
            shown = [app.get_key_display(Binding(k.strip(), b.action)) for k in (keys or b.key).split(",")]
        for k in shown:
            if k not in rows[desc]:
                rows[desc].append(k)
    return [KeyRow(" ".join(rows[d]), d) for d in order]


def collect_keys(app, screen: Screen) -> list[tuple[str, list[KeyRow]]]:
    """Groups of (title, rows): the screen, its own widgets, the app, navigation."""
    from cambrian_tui.screens import MODE_REGISTRY

    groups: list[tuple[str, list[KeyRow]]] = []
    seen: set[str] = set()
    nodes: list[DOMNode] = [screen] + [w for w in screen.walk_children() if own_bindings(w)]
    for node in nodes:
        title = _title(node)
        rows = _rows(app, own_bindings(node))
        if rows and title not in seen:
            seen.add(title)
            groups.append((title, rows))
    app_bindings = own_bindings(app)
    ids = {b.id for b in app_bindings}
    app_bindings += [Binding(m.key, f"switch_mode('{m.name}')", m.title, tooltip=f"{m.title} screen")
                     for m in MODE_REGISTRY.values() if f"app.mode.{m.name}" not in ids]
    groups.append(("App", _rows(app, app_bindings)))
    groups.append(("Navigation", list(NAVIGATION)))
    return groups


# Room for a description in one column of the 112-wide box (keys, gap and borders taken off)
DESCRIPTION_WIDTH = 36


def _height(row: KeyRow) -> int:
    """Lines a row takes once its description wraps (for balancing the columns)."""
    return max(1, -(-len(row.description) // DESCRIPTION_WIDTH))


class HelpScreen(CambrianModal):
    CSS_PATH = str(Path(__file__).with_name("help.tcss"))
    BINDINGS = bindings("help")
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(self, screen: Screen) -> None:
        super().__init__(id="help")
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        groups = collect_keys(self.app, self.for_screen)
        title = getattr(self.for_screen, "HELP_TITLE", None) or _title(self.for_screen)
        # two balanced columns: the screen's own keys on the left, the rest on the right
        sizes = [sum(_height(r) for r in rows) + 2 for _, rows in groups]
        split = 1
        best = None
        for i in range(1, len(groups)):
            diff = abs(sum(sizes[:i]) - sum(sizes[i:]))
            if best is None or diff < best:
                best, split = diff, i
        with Vertical(id="help-box"):
            yield Label(Content.from_markup(f"Keys — [b]{title}[/b]"), id="help-title")
            with Horizontal(id="help-columns"):
                for column in (groups[:split], groups[split:]):
                    with VerticalScroll(classes="help-column"):
                        for name, rows in column:
                            yield Static(Content.from_markup(f"[b $text-primary]{name}[/]"), classes="help-group")
                            for row in rows:
                                # keys and description side by side, so a long description
                                # wraps under itself instead of being cut at the column edge
                                with Horizontal(classes="help-line"):
                                    yield Static(Content.styled(row.keys, "bold $text-accent"), classes="help-keys")
                                    yield Static(row.description, classes="help-row")
            yield Static(Content.from_markup(
                f"[dim]{self.capp.key_label('app.palette')}: command palette (actions, “jump to generation N”) · "
                f"{self.capp.key_label('help.close')}: close · remap keys in {self._settings_path()} "
                "(`cambrian keys` lists the ids)[/]"), id="help-foot")

    def _settings_path(self) -> str:
        from cambrian_tui.settings import SETTINGS_FILE, settings_path

        if not getattr(self.capp, "show_home", True):  # snapshots: no paths on screen
            return f"<home>/{SETTINGS_FILE}"
        return str(settings_path(self.capp.home))

    def action_close(self) -> None:
        self.dismiss(None)
