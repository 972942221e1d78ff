"""Spec screen: spec versions and their lineage; side-by-side diff of any two versions.

New versions (an evolution's variant, an accepted amendment, a campaign's spec) appear as
they are stored: the screen watches the ``specs`` topic of the change signal."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from cambrian_tui.keys import bindings
from cambrian_tui.messages import SpecDiffLoaded, SpecVersionsLoaded
from cambrian_tui.nav import ShowSpec, Target
from cambrian_tui.screens.base import CambrianScreen
from cambrian_tui.widgets.side_diff import SideBySideDiff
from core.app.models import SpecDoc, SpecVersionView, short_hash


class SpecTree(Tree[SpecVersionView]):
    DEFAULT_CSS = "SpecTree { scrollbar-size-vertical: 1; }"


class SpecScreen(CambrianScreen):
    CSS_PATH = str(Path(__file__).with_name("spec.tcss"))
    HELP_TITLE = "Specs"
    AUTO_FOCUS = "#spec-tree"

    BINDINGS = bindings("spec")
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    WATCH = frozenset({"specs"})

    def __init__(self) -> None:
        super().__init__(id="spec")
        self.versions: list[SpecVersionView] = []
        self.by_hash: dict[str, SpecVersionView] = {}
        self.a: str | None = None
        self.b: str | None = None
        self._version_nodes: dict[str, TreeNode] = {}
        self._pending_select: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="spec-body"):
            with Vertical(id="spec-left"):
                yield SpecTree("specs", id="spec-tree")
                yield Static("", id="spec-info")
            with Vertical(id="spec-right"):
                yield Static("", id="diff-header")
                yield SideBySideDiff(id="spec-diff")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        tree = self.query_one(SpecTree)
        tree.show_root = False
        tree.auto_expand = False
        tree.border_title = "Spec versions"
        diff = self.query_one("#spec-diff", SideBySideDiff)
        diff.border_title = "Diff"
        diff.empty_text = (f"choose two spec versions to compare ({self.capp.key_label('spec.set_a')} "
                           f"sets A, {self.capp.key_label('spec.set_b')} sets B)")
        self.reload()

    def reload(self) -> None:
        reads = self.reads
        self.background("spec versions", lambda: SpecVersionsLoaded(reads.spec_versions()))

    def on_data(self, topics: frozenset[str]) -> None:
        self.reload()

    def action_refresh(self) -> None:
        self.reload()
        self.notify("reloaded", timeout=1)

    def navigate(self, target: Target) -> None:
        if isinstance(target, ShowSpec):
            self.select_version(target.spec_hash)

    # versions ------------------------------------------------------------------------------

    def on_spec_versions_loaded(self, message: SpecVersionsLoaded) -> None:
        versions = message.versions
        if [v.hash for v in versions] == [v.hash for v in self.versions]:
            return
        first = not self.versions
        self.versions = versions
        self.by_hash = {v.hash: v for v in versions}
        self._build_tree()
        if self._pending_select:
            target, self._pending_select = self._pending_select, None
            self.select_version(target)
        elif first and versions:
            stored = [v for v in versions if v.origin != "shipped"] or versions
            newest = stored[-1]
            self.b = newest.hash
            self.a = newest.parent_hash if newest.parent_hash in self.by_hash else (
                stored[-2].hash if len(stored) > 1 else newest.hash)
            self._refresh_labels()
            self._cursor_to(newest.hash)
            self._load_diff()

    def _label(self, v: SpecVersionView) -> Text:
        t = Text()
        mark = "A" if v.hash == self.a else "B" if v.hash == self.b else " "
        if v.hash == self.a and v.hash == self.b:
            mark = "="
        style = "bold reverse" if mark != " " else ""
        t.append(f"{mark}", style)
        t.append(f" {v.title}", "bold")
        t.append(f"  {v.origin}", "italic")
        t.append(f"  {short_hash(v.hash, 8)}", "dim")
        return t

    def _build_tree(self) -> None:
        tree = self.query_one(SpecTree)
        tree.clear()
        self._version_nodes.clear()
        children: dict[str | None, list[SpecVersionView]] = {}
        for v in self.versions:
            parent = v.parent_hash if v.parent_hash in self.by_hash else None
            children.setdefault(parent, []).append(v)

        def add(node: TreeNode, v: SpecVersionView, depth: int) -> None:
            kids = children.get(v.hash, [])
            child = node.add(self._label(v), data=v, expand=True, allow_expand=bool(kids))
            self._version_nodes[v.hash] = child
            if depth < 200:
                for k in kids:
                    add(child, k, depth + 1)

        for root in children.get(None, []):
            add(tree.root, root, 0)
        tree.border_title = f"Spec versions ({len(self.versions)})"

    def _refresh_labels(self) -> None:
        for h, node in self._version_nodes.items():
            node.set_label(self._label(self.by_hash[h]))

    def _cursor_to(self, h: str) -> None:
        node = self._version_nodes.get(h)
        if node is not None:
            tree = self.query_one(SpecTree)
            tree.call_after_refresh(tree.move_cursor, node)

    @on(Tree.NodeHighlighted, "#spec-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        v = event.node.data
        if v is None:
            return
        info = self.query_one("#spec-info", Static)
        parent = self.by_hash.get(v.parent_hash or "")
        lines = [f"[b]{v.title}[/b]  [dim]{v.origin}[/]",
                 f"[dim]hash[/]   {short_hash(v.hash, 24)}",
                 f"[dim]parent[/] {parent.title if parent else '-'}",
                 f"[dim]created[/] {v.created_at or '-'}"]
        if v.shipped_path:
            lines.append(f"[dim]file[/] {v.shipped_path}")
        info.update(Content.from_markup("\n".join(lines)))

    @on(Tree.NodeSelected, "#spec-tree")
    def _selected(self, event: Tree.NodeSelected) -> None:
        event.stop()
        self.action_diff_parent()

    def select_version(self, h: str) -> None:
        """Show version h against its parent (search, the palette, other screens). A version
        not listed yet (stored a moment ago) is shown once the reload it asks for lists it."""
        if h not in self.by_hash:
            self._pending_select = h
            self.reload()
            return
        v = self.by_hash[h]
        self.b = h
        self.a = v.parent_hash if v.parent_hash in self.by_hash else h
        self._refresh_labels()
        self._cursor_to(h)
        self._load_diff()

    # actions ---------------------------------------------------------------------------------

    def _highlighted_version(self) -> SpecVersionView | None:
        node = self.query_one(SpecTree).cursor_node
        return node.data if node is not None else None

    def action_mark(self, side: str) -> None:
        v = self._highlighted_version()
        if v is None:
            return
        if side == "a":
            self.a = v.hash
        else:
            self.b = v.hash
        self._refresh_labels()
        self._load_diff()

    def action_diff_parent(self) -> None:
        v = self._highlighted_version()
        if v is None:
            return
        self.select_version(v.hash)

    def action_swap(self) -> None:
        self.a, self.b = self.b, self.a
        self._refresh_labels()
        self._load_diff()

    def action_zoom(self) -> None:
        left = self.query_one("#spec-left")
        left.display = not left.display
        if not left.display:
            self.query_one(SideBySideDiff).focus()

    def action_next_change(self) -> None:
        self.query_one(SideBySideDiff).action_next_hunk()

    def action_prev_change(self) -> None:
        self.query_one(SideBySideDiff).action_prev_hunk()

    def action_fold(self) -> None:
        self.query_one(SideBySideDiff).action_toggle_context()

    # diff --------------------------------------------------------------------------------------

    def _load_diff(self) -> None:
        if not self.a or not self.b:
            return
        va, vb = self.by_hash[self.a], self.by_hash[self.b]
        reads = self.reads
        self.background("spec diff", lambda: SpecDiffLoaded(reads.spec_doc(va), reads.spec_doc(vb)))

    def on_spec_diff_loaded(self, message: SpecDiffLoaded) -> None:
        left, right = message.left, message.right
        if left.hash != self.a or right.hash != self.b:
            return
        diff = self.query_one(SideBySideDiff)
        diff.set_docs(left, right)
        self._show_header(left, right)

    def _show_header(self, left: SpecDoc, right: SpecDoc) -> None:
        m = self.query_one(SideBySideDiff).model
        if m is None:
            return
        same = left.hash == right.hash
        head = (f"[b reverse] A [/] [b]{left.title}[/] [dim]{short_hash(left.hash, 8)}[/]   ⟷   "
                f"[b reverse] B [/] [b]{right.title}[/] [dim]{short_hash(right.hash, 8)}[/]")
        if same:
            stats = (f"[dim]the same version on both sides — {self.capp.key_label('spec.set_a')} / "
                     f"{self.capp.key_label('spec.set_b')} set A / B to the highlighted version[/]")
        else:
            stats = (f"[$text-success]+{m.added}[/] [$text-error]−{m.removed}[/] lines · {len(m.hunks)} change"
                     f"{'s' if len(m.hunks) != 1 else ''}")
            if m.changed_sections:
                stats += f" · sections: {', '.join(m.changed_sections)}"
            if m.frozen_touched:
                stats += f" · [b $text-error]FROZEN changed: {', '.join(m.frozen_touched)}[/]"
            else:
                frozen = sorted({name for _s, _e, name in right.frozen})
                if frozen:
                    stats += f" · [$text-accent]▌[/] FROZEN intact: {', '.join(frozen)}"
        self.query_one("#diff-header", Static).update(Content.from_markup(head + "\n" + stats))

    @on(SideBySideDiff.SectionChanged)
    def _section_changed(self, event: SideBySideDiff.SectionChanged) -> None:
        self.query_one(SideBySideDiff).border_subtitle = f"§ {event.section}" if event.section else ""
