"""The generation tree: lineage with outcome colours, counts and lazy loading.

Shape (see ``LineageModel``): each line of descent is flattened (a generation's heir is
its next sibling), other offspring nest under their parent. Long lists are split into
pages of ``PAGE`` entries whose children are only created when the page is expanded, so
a 10k- or 100k-generation campaign costs a few hundred tree nodes until you dig in.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from cambrian_tui.keys import bindings
from cambrian_tui.messages import GenerationChosen, GenerationHighlighted
from core.app.models import LineageModel

PAGE = 100
SPLIT_ABOVE = 150

OUTCOME_GLYPH = {
    "promoted": "✓",
    "failed": "✗",
    "timeout": "⏱",
    "interrupted": "⊘",
    "in_progress": "●",
    "tested": "◐",
}
BRED_GLYPH = "✿"  # a generation an offspring bred (reproduction), and its breeder's fertility
FERTILITY_OUTCOME = {"fertile": "promoted", "infertile": "failed", "error": "timeout"}
# outcome -> theme variable
OUTCOME_VAR = {
    "promoted": "success",
    "failed": "error",
    "timeout": "warning",
    "interrupted": "secondary",
    "in_progress": "accent",
    "tested": "primary",
}


def outcome_style(theme_vars: dict[str, str], outcome: str) -> Style:
    color = theme_vars.get(OUTCOME_VAR.get(outcome, "foreground"), "")
    try:
        return Style(color=color) if color else Style()
    except Exception:
        return Style()


@dataclass(frozen=True)
class GenNode:
    number: int


@dataclass(frozen=True)
class PageNode:
    key: str
    items: tuple[int, ...]


class GenerationTree(Tree[object]):
    BINDINGS = bindings("tree")

    DEFAULT_CSS = """
    GenerationTree { scrollbar-size-vertical: 1; }
    """
    _user_nav = False  # the next cursor move comes from a key or a click (watchers run before __init__ ends)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("generations", id=id, classes=classes)
        self.show_root = False
        self.auto_expand = False
        self.guide_depth = 3
        self.model: LineageModel | None = None
        self._gen_nodes: dict[int, TreeNode] = {}
        self._expanded: set[object] = set()
        self._populated: set[int] = set()  # node ids whose children exist
        self._styles: dict[str, Style] = {}
        self._muted = Style(dim=True)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._retheme())
        self._load_styles()

    def _load_styles(self) -> None:
        tv = self.app.theme_variables
        self._styles = {o: outcome_style(tv, o) for o in OUTCOME_VAR}
        try:
            self._muted = Style(color=tv.get("foreground-muted") or None, dim=not tv.get("foreground-muted"))
        except Exception:
            self._muted = Style(dim=True)

    def _retheme(self) -> None:
        self._load_styles()
        for n, node in self._gen_nodes.items():
            node.set_label(self.gen_label(n))

    def get_label_width(self, node: TreeNode) -> int:
        # The default renders and styles every label just to measure it; ours are plain
        # single-line Text, so the cell length is enough (matters with many nodes).
        prefix = len(self.ICON_NODE) if node._allow_expand else 0
        return node._label.cell_len + prefix

    # labels -----------------------------------------------------------------------------

    def gen_label(self, n: int) -> Text:
        m = self.model
        assert m is not None
        outcome = m.outcome.get(n, "?")
        style = self._styles.get(outcome, Style())
        text = Text()
        text.append(f"{OUTCOME_GLYPH.get(outcome, '?')} ", style)
        text.append(f"#{n}", style + Style(bold=True))
        label = outcome
        stage = m.stage.get(n)
        if outcome in ("failed", "timeout") and stage and stage != "none":
            label = f"{outcome}@{stage}"
        text.append(f" {label}", style)
        if n in m.bred:  # written by its parent organism, not by the engine
            text.append(f" {BRED_GLYPH}bred", self._muted)
        fert = m.fertility.get(n)
        if fert:
            text.append(f" {BRED_GLYPH}{fert}", self._styles.get(FERTILITY_OUTCOME.get(fert, ""), self._muted))
        kids = m.offspring(n)
        if kids:
            bad = sum(1 for c in kids if m.outcome.get(c) in ("failed", "timeout", "interrupted"))
            extra = f"  +{len(kids)}"
            if bad:
                extra += f" ✗{bad}"
            text.append(extra, self._muted)
        return text

    def page_label(self, page: PageNode) -> Text:
        m = self.model
        assert m is not None
        items = page.items
        text = Text()
        text.append(f"#{items[0]}…#{items[-1]}", Style(bold=True))
        ok = sum(1 for n in items if m.outcome.get(n) == "promoted")
        text.append(f"  {len(items)} gens", self._muted)
        if ok:
            text.append(f"  ✓{ok}", self._styles.get("promoted", Style()))
        live = sum(1 for n in items if m.outcome.get(n) in ("in_progress", "tested"))
        if live:
            text.append(f"  ●{live}", self._styles.get("in_progress", Style()))
        return text

    # building -----------------------------------------------------------------------------

    def set_model(self, model: LineageModel) -> None:
        """Show a new lineage, keeping expansions and the cursor where possible; every
        generation in flight is kept visible (its ancestors expanded)."""
        keep_cursor = self.selected_generation
        same_campaign = self.model is not None and self.model.campaign_id == model.campaign_id
        if not same_campaign:
            self._expanded.clear()
            keep_cursor = None
        self.model = model
        self._gen_nodes.clear()
        self._populated.clear()
        self.clear()
        self._add_list(self.root, model.spine, "top")
        # expand what was expanded before (top-down; lazily populated)
        self._restore(self.root)
        if not same_campaign:
            self._expand_latest()
        for n in model.running:
            self.expand_to(n)
        if keep_cursor is not None and keep_cursor in model.parent:
            self.reveal(keep_cursor, select=False)
        elif not same_campaign and model.numbers:
            self.reveal(model.numbers[-1], select=False)  # the newest generation

    def _add_list(self, parent: TreeNode, items: list[int], key: str) -> None:
        if len(items) > SPLIT_ABOVE:
            for start in range(0, len(items), PAGE):
                chunk = tuple(items[start:start + PAGE])
                page = PageNode(f"{key}/{start}", chunk)
                parent.add(self.page_label(page), data=page, allow_expand=True)
        else:
            for n in items:
                self._add_gen(parent, n)
        self._populated.add(id(parent))

    def _add_gen(self, parent: TreeNode, n: int) -> TreeNode:
        assert self.model is not None
        has_kids = bool(self.model.offspring(n))
        node = parent.add(self.gen_label(n), data=GenNode(n), allow_expand=has_kids)
        self._gen_nodes[n] = node
        return node

    def _populate(self, node: TreeNode) -> None:
        if id(node) in self._populated or self.model is None:
            return
        data = node.data
        if isinstance(data, PageNode):
            for n in data.items:
                self._add_gen(node, n)
            self._populated.add(id(node))
        elif isinstance(data, GenNode):
            self._add_list(node, self.model.offspring(data.number), f"g{data.number}")

    def _key(self, node: TreeNode) -> object:
        data = node.data
        if isinstance(data, PageNode):
            return ("page", data.key)
        if isinstance(data, GenNode):
            return ("gen", data.number)
        return None

    def _restore(self, node: TreeNode) -> None:
        for child in list(node.children):
            if self._key(child) in self._expanded:
                self._populate(child)
                child.expand()
                self._restore(child)

    def _expand_latest(self) -> None:
        """Open the newest page and the newest spine generation (where the action is)."""
        top = list(self.root.children)
        if not top:
            return
        last = top[-1]
        if isinstance(last.data, PageNode):
            self._populate(last)
            last.expand()
            self._expanded.add(self._key(last))
            kids = list(last.children)
            if not kids:
                return
            last = kids[-1]
        if last.allow_expand:
            self._populate(last)
            last.expand()
            self._expanded.add(self._key(last))

    # events --------------------------------------------------------------------------------

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self._populate(event.node)
        self._expanded.add(self._key(event.node))

    def _on_tree_node_collapsed(self, event: Tree.NodeCollapsed) -> None:
        self._expanded.discard(self._key(event.node))

    # who moved the cursor: a key or a click (the user), or the program (rebuild, reveal)?
    # The flag is set by the user's actions and read, synchronously, where the cursor moves.

    def watch_cursor_line(self, previous_line: int, line: int) -> None:
        super().watch_cursor_line(previous_line, line)
        by_user, self._user_nav = self._user_nav, False
        node = self.cursor_node
        if previous_line != line and node is not None and isinstance(node.data, GenNode):
            self.post_message(GenerationHighlighted(node.data.number, by_user=by_user))

    def _by_user(self, action) -> None:
        self._user_nav = True
        try:
            action()
        finally:
            self._user_nav = False

    def action_cursor_up(self) -> None:
        self._by_user(super().action_cursor_up)

    def action_cursor_down(self) -> None:
        self._by_user(super().action_cursor_down)

    def action_page_up(self) -> None:
        self._by_user(super().action_page_up)

    def action_page_down(self) -> None:
        self._by_user(super().action_page_down)

    def action_scroll_home(self) -> None:
        self._by_user(super().action_scroll_home)

    def action_scroll_end(self) -> None:
        self._by_user(super().action_scroll_end)

    def action_cursor_parent(self) -> None:
        self._by_user(super().action_cursor_parent)

    def action_cursor_next_sibling(self) -> None:
        self._by_user(super().action_cursor_next_sibling)

    def action_cursor_previous_sibling(self) -> None:
        self._by_user(super().action_cursor_previous_sibling)

    def action_cursor_parent_next_sibling(self) -> None:
        self._by_user(super().action_cursor_parent_next_sibling)

    def _on_click(self, event: events.Click) -> None:
        # Tree's own click handler (called after this one) moves the cursor
        self._user_nav = True
        self.call_later(self._clear_user_nav)

    def _clear_user_nav(self) -> None:
        self._user_nav = False

    def _on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()  # GenerationHighlighted (posted where the cursor moves) says more

    def _on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()
        node = event.node
        if isinstance(node.data, GenNode):
            self.post_message(GenerationChosen(node.data.number))
        elif node.allow_expand:
            node.toggle()

    def action_expand(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            if node.is_expanded and node.children:
                self._by_user(lambda: self.move_cursor(node.children[0]))
            else:
                node.expand()

    def action_collapse(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self._by_user(lambda: self.move_cursor(node.parent))

    # navigation ---------------------------------------------------------------------------

    @property
    def selected_generation(self) -> int | None:
        node = self.cursor_node
        if node is not None and isinstance(node.data, GenNode):
            return node.data.number
        return None

    def expand_to(self, n: int) -> bool:
        """Expand what hides generation n, without moving the cursor."""
        return self._open_path(n)

    def reveal(self, n: int, *, select: bool = True) -> bool:
        """Expand whatever is needed to show generation n and put the cursor on it."""
        if not self._open_path(n):
            return False
        self.call_after_refresh(self._cursor_to, n, select)
        return True

    def _open_path(self, n: int) -> bool:
        m = self.model
        if m is None or n not in m.parent:
            return False
        node = self._gen_nodes.get(n)
        if node is None:
            path = m.path_to(n)
            if not path:
                return False
            top = path[0]
            if top not in self._gen_nodes:
                pos = m.spine_position(top)
                if pos is None:
                    return False
                for child in self.root.children:
                    if isinstance(child.data, PageNode) and top in child.data.items:
                        self._populate(child)
                        child.expand()
                        self._expanded.add(self._key(child))
                        break
            for ancestor in path[:-1]:
                anode = self._gen_nodes.get(ancestor)
                if anode is None:
                    break
                self._populate(anode)
                anode.expand()
                self._expanded.add(self._key(anode))
                # offspring may themselves be paged
                if n not in self._gen_nodes:
                    nxt = path[path.index(ancestor) + 1]
                    for child in anode.children:
                        if isinstance(child.data, PageNode) and nxt in child.data.items:
                            self._populate(child)
                            child.expand()
                            self._expanded.add(self._key(child))
                            break
            node = self._gen_nodes.get(n)
            if node is None:
                return False
        return True

    def _cursor_to(self, n: int, select: bool) -> None:
        node = self._gen_nodes.get(n)
        if node is None:
            return
        # Tree numbers its lines lazily (on idle or render); a node expanded since then still
        # has line -1 and move_cursor would land on line 0. last_line rebuilds the numbering.
        if self.last_line < 0 or node.line < 0:
            return
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)
