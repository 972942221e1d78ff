"""Amendments screen (DESIGN §10, §11): review what the distiller proposes.

Left: the amendments (status, feature, target section, q-value, text), pending first,
filterable by status. Right: the selected amendment's evidence (rates in each group,
counts, p, q, odds ratio), its example snippets (highlighted), and a side-by-side
preview of the spec it would produce (``core.distill.amend.distill_preview``; for an
amendment already applied, its parent against the stored result).

Keys (defaults; ``cambrian_tui.keys``): ``a`` accept, ``r`` reject, ``e`` edit the text
(``ctrl+s`` in the editor keeps the edit; the next accept stores it, status ``edited``),
``d`` show / hide the diff, ``f`` cycle the status filter, ``c`` run a confirmation campaign
of an accepted amendment (offered right after an accept; its before/after viability, with
intervals and Fisher's and McNemar's tests, shows under the evidence), ``escape`` back. Reads go
through ``core.app`` in thread workers; accept / reject are typed commands
(``core.app.commands``) listed in ``REVIEW`` below: a new review command is one entry
there, one key in ``cambrian_tui.keys`` and one handler in core. A refused command leaves
the amendment pending and shows the reason in a notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.message import Message
from textual.widgets import DataTable, Footer, Static, TextArea

from cambrian_tui.keys import bindings
from cambrian_tui.messages import CommandDone, CommandFailed
from cambrian_tui.screens.base import CambrianModal, CambrianScreen
from cambrian_tui.widgets.side_diff import SideBySideDiff
from core.app.commands import (AcceptAmendment, AmendmentDone, ConfirmAmendment, ConfirmationStarted,
                               RejectAmendment)
from core.app.models import AmendmentPreview, AmendmentView, short_hash
from core.app.reads import STATUS_ORDER
from core.app.specdoc import make_spec_doc

#: filter cycle of the ``f`` key; ``None`` shows everything (pending first)
FILTERS: tuple[str | None, ...] = (None, "pending", "accepted", "edited", "rejected")
STATUS_STYLE = {"pending": "bold yellow", "accepted": "green", "edited": "cyan", "rejected": "dim red"}
SHORT_TEXT = 60


# --- review commands and messages --------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAction:
    """One way to decide on a pending amendment: the command it runs (given the row and the
    kept edit, if any) and the word for what it did."""

    done: str
    make: Callable[[AmendmentView, str | None], Any]


REVIEW: dict[str, ReviewAction] = {
    "accept": ReviewAction("accepted", lambda row, edit: AcceptAmendment(row.id, edit)),
    "reject": ReviewAction("rejected", lambda row, edit: RejectAmendment(row.id)),
}


class AmendmentsLoaded(Message):
    def __init__(self, rows: list[AmendmentView]) -> None:
        super().__init__()
        self.rows = rows


class ConfirmationLoaded(Message):
    def __init__(self, amendment_id: int, report: dict[str, Any] | None) -> None:
        super().__init__()
        self.amendment_id = amendment_id
        self.report = report


class PreviewLoaded(Message):
    def __init__(self, preview: AmendmentPreview) -> None:
        super().__init__()
        self.preview = preview


# --- rendering helpers (UI thread, pure) -----------------------------------------------------


def _num(v: Any, fmt: str = ".3g") -> str:
    if isinstance(v, (int, float)):
        return format(v, fmt)
    return "-" if v is None else str(v)


def _rate(g: dict[str, Any] | None) -> str:
    if not g:
        return "-"
    rate = g.get("rate")
    pct = f"{rate * 100:.0f}%" if isinstance(rate, (int, float)) else "-"
    return f"{pct} ({g.get('present', '?')}/{g.get('n', '?')})"


def evidence_content(row: AmendmentView, edited: str | None) -> Content:
    ev = row.evidence
    parts: list[Content] = []
    head = Content.from_markup(
        f"[b]#{row.id}[/b]  [b $text-accent]$feature[/]  → [b]§ $section[/]  [dim]$status[/]",
        feature=row.feature or "-", section=row.section, status=row.status)
    parts.append(head)
    desc = ev.get("description")
    if desc:
        parts.append(Content.from_markup("[dim]$d[/]", d=str(desc)))
    text = edited if edited is not None else row.text
    label = "[b $text-warning]edited text (not stored until accepted)[/]" if edited is not None else "[b]text[/]"
    parts.append(Content.from_markup(label))
    parts.append(Content(text))
    groups = ev.get("groups") or {}
    if groups:
        direction = ev.get("direction", "")
        comparison = str(ev.get("comparison", "")).replace("_", " ")
        parts.append(Content.from_markup("[b]evidence[/]  [dim]$c · $d[/]", c=comparison, d=direction))
        for name, g in groups.items():
            parts.append(Content.from_markup("  [b]$name[/] $rate", name=f"{name:<8}", rate=_rate(g)))
        parts.append(Content.from_markup(
            "  p [b]$p[/]   q [b]$q[/]   odds ratio [b]$odds[/]   [dim](Haldane $orh)[/]",
            p=_num(ev.get("p")), q=_num(ev.get("q")), odds=_num(ev.get("odds_ratio")),
            orh=_num(ev.get("odds_ratio_haldane"))))
        others = [t for t in ev.get("tests") or [] if t.get("comparison") != ev.get("comparison")]
        for t in others:
            parts.append(Content.from_markup(
                "  [dim]also $c: p $p q $q ($d)[/]", c=str(t.get("comparison", "")).replace("_", " "),
                p=_num(t.get("p")), q=_num(t.get("q")), d=str(t.get("direction", ""))))
    if row.result_spec_hash:
        parts.append(Content.from_markup("[dim]result spec[/] $h", h=short_hash(row.result_spec_hash, 16)))
    return Content("\n").join(parts)


def confirmation_content(rep: dict[str, Any] | None, row: AmendmentView) -> Content:
    """The confirmation campaign's before/after, or how to start one."""
    if rep is None:
        if row.status in ("accepted", "edited") and row.campaign_id:
            return Content.from_markup("[b]confirmation[/]  [dim]none yet: c runs the amended spec with the "
                                       "settings and seed schedule of $c[/]", c=row.campaign_id)
        return Content("")
    b, a = rep["before"], rep["after"]
    n = len(rep.get("confirmations") or [])
    lines = [Content.from_markup("[b]confirmation[/]  [dim]$what[/]",
                                 what="the newest of " + str(n) if n > 1 else "campaign")]
    for name, side in (("before", b), ("after", a)):
        iv = side.get("interval")
        rate = (f"{side['viable']}/{side['judged']} viable [{iv[0] * 100:.0f}–{iv[1] * 100:.0f}%]"
                if side.get("judged") and iv else "nothing judged yet")
        lines.append(Content.from_markup("  [b]$name[/] $cid  $rate  [dim]$state[/]", name=f"{name:<6}",
                                         cid=side["campaign"], rate=rate, state=side["state"]))
    d = rep.get("difference")
    if d:
        lines.append(Content.from_markup(
            "  difference [b]$v[/] points $iv (95 %), Fisher p [b]$p[/]",
            v=f"{d['value'] * 100:+.1f}", iv=f"[{d['interval'][0] * 100:+.1f}, {d['interval'][1] * 100:+.1f}]",
            p=_num(rep["fisher"]["p"], ".2g")))
    else:
        lines.append(Content.styled("  " + str(rep.get("verdict", "")), "dim"))
    pr = rep.get("paired")
    if pr:
        lines.append(Content.from_markup(
            "  paired by draw: $n draws, $up fixed, $down broken, McNemar p [b]$p[/]",
            n=str(pr["pairs"]), up=str(pr["only_after"]), down=str(pr["only_before"]), p=_num(pr["p"], ".2g")))
    if d and not rep.get("complete"):
        lines.append(Content.styled("  (still running: the figures move as generations are judged)", "dim"))
    lines.append(Content(""))
    return Content("\n").join(lines)


def snippet_content(example: dict[str, Any]) -> Content:
    """One example: a header line and the numbered snippet, syntax-highlighted."""
    path = str(example.get("file", "?"))
    code = str(example.get("code") or example.get("snippet") or "")
    head = Content.from_markup("[b]gen $g[/]  $f[dim]:$l[/]", g=str(example.get("generation", "?")), f=path,
                               l=str(example.get("line", "?")))
    numbers: list[str] = []
    body: list[str] = []
    for ln in code.splitlines():
        num, sep, rest = ln.partition(" | ")
        if sep and num.strip().isdigit():
            numbers.append(num)
            body.append(rest)
        else:
            numbers.append("")
            body.append(ln)
    try:
        lines = highlight("\n".join(body), path=path).split("\n", allow_blank=True)
    except Exception:
        lines = [Content(b) for b in body]
    mark = str(example.get("line", ""))
    out = [head]
    for num, line in zip(numbers, lines):
        style = "bold $text-accent" if num.strip() == mark else "dim"
        out.append(Content.assemble((f"{num:>4} │ ", style), line))
    return Content("\n").join(out)


# --- the editor -------------------------------------------------------------------------------


class EditAmendment(CambrianModal[str | None]):
    """A TextArea with the amendment text; ``ctrl+s`` keeps it, ``escape`` cancels."""

    CSS_PATH = str(Path(__file__).with_name("amendments.tcss"))
    HELP_TITLE = "Edit amendment"
    BINDINGS = bindings("amendment_editor")

    def __init__(self, amendment_id: int, section: str, text: str) -> None:
        super().__init__(id="amend-edit")
        self.amendment_id = amendment_id
        self.section = section
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="amend-edit-box"):
            yield Static(Content.from_markup("Edit amendment [b]#$i[/b] → § $s", i=str(self.amendment_id),
                                             s=self.section), id="amend-edit-title")
            yield TextArea(self.text, id="amend-edit-text", soft_wrap=True, show_line_numbers=False)
            yield Static("", id="amend-edit-foot")

    def on_mount(self) -> None:
        app = self.capp
        self.query_one("#amend-edit-foot", Static).update(Content.from_markup(
            "[dim]$save keep the edit (then [b]$accept[/b] accepts it, status edited) · $cancel cancel[/]",
            save=app.key_label("amendment_editor.save"), accept=app.key_label("amendments.accept"),
            cancel=app.key_label("amendment_editor.cancel")))
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


# --- the screen --------------------------------------------------------------------------------


class AmendmentTable(DataTable):
    DEFAULT_CSS = "AmendmentTable { scrollbar-size-vertical: 1; }"


class AmendmentsScreen(CambrianScreen):
    CSS_PATH = str(Path(__file__).with_name("amendments.tcss"))
    HELP_TITLE = "Amendments"
    AUTO_FOCUS = "#amend-table"

    BINDINGS = bindings("amendments")
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    WATCH = frozenset({"amendments", "specs", "generations", "campaigns"})

    def __init__(self) -> None:
        super().__init__(id="amendments")
        self.rows: list[AmendmentView] = []
        self.by_id: dict[int, AmendmentView] = {}
        self.filter: str | None = None
        self.selected: int | None = None
        self.edits: dict[int, str] = {}  # kept edits, applied by the next accept
        self.busy: set[int] = set()  # amendments with a write in flight
        self._preview_key: tuple[int, str | None, str] | None = None
        self._want: int | None = None  # an amendment a jump asked for, selected once loaded
        self.confirmation: dict[int, dict[str, Any] | None] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="amend-body"):
            with Vertical(id="amend-left"):
                yield Static("", id="amend-filter")
                yield AmendmentTable(id="amend-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="amend-right"):
                with VerticalScroll(id="amend-detail"):
                    yield Static("", id="amend-evidence")
                    yield Static("", id="amend-confirmation")
                    yield Static("", id="amend-examples")
                with Vertical(id="amend-preview"):
                    yield Static("", id="amend-diff-header")
                    yield SideBySideDiff(id="amend-diff")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(AmendmentTable)
        table.add_column("#", key="id", width=3)
        table.add_column("status", key="status", width=8)
        table.add_column("q", key="q", width=6)
        table.add_column("feature", key="feature", width=18)
        table.add_column("section", key="section", width=14)
        table.add_column("text", key="text")
        table.border_title = "Amendments"
        self.query_one("#amend-detail").border_title = "Evidence"
        diff = self.query_one("#amend-diff", SideBySideDiff)
        diff.border_title = "Preview: spec before ⟷ after"
        diff.empty_text = "select an amendment to preview the spec it makes"
        self._show_filter()
        self.reload()

    # loading ------------------------------------------------------------------------------------

    def reload(self) -> None:
        reads = self.reads
        self.background("amendments", lambda: AmendmentsLoaded(reads.amendments()))

    def on_data(self, topics: frozenset[str]) -> None:
        if topics & {"amendments", "specs"}:
            self.reload()
        row = self.current()
        if row is not None and row.status in ("accepted", "edited"):
            self._load_confirmation(row)  # a confirmation campaign moves on

    def navigate(self, target: Any) -> None:
        """A jump here (after ``D``): show the pending proposals, the first one selected."""
        from cambrian_tui.nav import ShowAmendments

        if isinstance(target, ShowAmendments):
            if target.ids:
                self.filter = "pending"
                self._want = target.ids[0]
                self._show_filter()
            self.reload()

    def action_refresh(self) -> None:
        self.reload()

    def visible_rows(self) -> list[AmendmentView]:
        return [r for r in self.rows if self.filter is None or r.status == self.filter]

    def on_amendments_loaded(self, message: AmendmentsLoaded) -> None:
        old = {r.id: r for r in self.rows}
        self.rows = message.rows
        self.by_id = {r.id: r for r in self.rows}
        self._fill_table()
        cur = self.by_id.get(self.selected) if self.selected is not None else None
        if cur is not None and old.get(cur.id) != cur:
            self._show_selected(force=True)

    def _fill_table(self) -> None:
        table = self.query_one(AmendmentTable)
        keep = self.selected
        table.clear()
        rows = self.visible_rows()
        for r in rows:
            text = " ".join(r.text.split())
            if len(text) > SHORT_TEXT:
                text = text[: SHORT_TEXT - 1] + "…"
            status = Text(r.status + ("*" if r.id in self.edits and r.status == "pending" else ""),
                          STATUS_STYLE.get(r.status, ""))
            section = r.section if len(r.section) <= 14 else r.section[:13] + "…"
            table.add_row(str(r.id), status, _num(r.q, ".2g"), r.feature or "-", section, text, key=str(r.id))
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        table.border_subtitle = " ".join(f"{k} {v}" for k, v in sorted(counts.items(),
                                                                          key=lambda kv: STATUS_ORDER.get(kv[0], 9)))
        ids = [r.id for r in rows]
        if not ids:
            self.selected = None
            self._show_empty()
            return
        if self._want in ids:
            keep, self._want = self._want, None
        target = keep if keep in ids else ids[0]
        table.move_cursor(row=ids.index(target), animate=False)
        if self.selected != target:
            self.selected = target
            self._show_selected()

    def _show_empty(self) -> None:
        msg = ("No amendments yet. On the Campaigns screen ([b]F2[/b]) select a finished campaign and "
               "press [b]D[/b] to distill it, or run [b]cambrian distill <campaign>[/b]."
               if not self.rows else "No amendments with this status (f: next filter).")
        self.query_one("#amend-evidence", Static).update(Content.from_markup(msg))
        self.query_one("#amend-examples", Static).update("")
        self.query_one("#amend-confirmation", Static).update("")
        self.query_one("#amend-diff-header", Static).update("")
        self._preview_key = None

    def _show_filter(self) -> None:
        names = ["all" if f is None else f for f in FILTERS]
        current = "all" if self.filter is None else self.filter
        parts = [f"[b reverse] {n} [/]" if n == current else f"[dim]{n}[/]" for n in names]
        self.query_one("#amend-filter", Static).update(Content.from_markup("status: " + " ".join(parts)))

    @on(DataTable.RowHighlighted, "#amend-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        if key is None:
            return
        aid = int(key)
        if aid != self.selected:
            self.selected = aid
            self._show_selected()

    def current(self) -> AmendmentView | None:
        return self.by_id.get(self.selected) if self.selected is not None else None

    def _show_selected(self, force: bool = False) -> None:
        row = self.current()
        if row is None:
            self._show_empty()
            return
        edited = self.edits.get(row.id) if row.status == "pending" else None
        self.query_one("#amend-evidence", Static).update(evidence_content(row, edited))
        self.query_one("#amend-confirmation", Static).update(
            confirmation_content(self.confirmation.get(row.id), row))
        if row.status in ("accepted", "edited"):
            self._load_confirmation(row)
        examples = row.evidence.get("examples") or []
        src = row.evidence.get("examples_from")
        if examples:
            head = Content.from_markup("[b]examples[/]" + (f" [dim]from {src} generations[/]" if src else ""))
            body = Content("\n\n").join([snippet_content(ex) for ex in examples])
            self.query_one("#amend-examples", Static).update(Content("\n").join([head, body]))
        else:
            self.query_one("#amend-examples", Static).update(Content.from_markup("[dim]no example snippets[/]"))
        self._load_preview(row, edited, force=force)

    def _load_confirmation(self, row: AmendmentView) -> None:
        reads, aid = self.reads, row.id
        self.background("confirmation", lambda: ConfirmationLoaded(aid, reads.amendment_confirmation(aid)))

    def on_confirmation_loaded(self, message: ConfirmationLoaded) -> None:
        self.confirmation[message.amendment_id] = message.report
        row = self.current()
        if row is not None and row.id == message.amendment_id:
            self.query_one("#amend-confirmation", Static).update(confirmation_content(message.report, row))

    def _load_preview(self, row: AmendmentView, edited: str | None, force: bool = False) -> None:
        key = (row.id, edited, row.status)
        if key == self._preview_key and not force:
            return
        self._preview_key = key
        if not self.query_one("#amend-preview").display:
            return
        self.query_one("#amend-diff-header", Static).update(Content.from_markup("[dim]computing preview…[/]"))
        reads, aid = self.reads, row.id
        self.background("amendment preview", lambda: PreviewLoaded(reads.amendment_preview(aid, edited)))

    def on_preview_loaded(self, message: PreviewLoaded) -> None:
        p = message.preview
        row = self.current()
        if row is None or row.id != p.amendment_id:
            return
        header = self.query_one("#amend-diff-header", Static)
        diff = self.query_one(SideBySideDiff)
        if p.problem is not None or p.old is None or p.new is None:
            header.update(Content.from_markup("[b $text-error]cannot apply:[/] $r", r=p.problem or "?"))
            empty = make_spec_doc("", "", "")
            diff.set_docs(empty, empty)
            return
        diff.set_docs(p.old, p.new)
        m = diff.model
        what = "applied" if p.applied else ("preview with your edit" if p.edited else "preview")
        stats = ""
        if m is not None:
            stats = f" · +{m.added} −{m.removed} lines"
            if m.changed_sections:
                stats += f" · § {', '.join(m.changed_sections)}"
            frozen = sorted({name for _s, _e, name in p.new.frozen})
            if m.frozen_touched:
                stats += f" · FROZEN changed: {', '.join(m.frozen_touched)}"
            elif frozen:
                stats += " · FROZEN intact"
        header.update(Content.from_markup("[b]$w[/]$s", w=what, s=stats))
        if m is not None and m.hunks:
            diff.call_after_refresh(diff.action_next_hunk)

    # actions -------------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.switch_mode("main")

    def action_toggle_diff(self) -> None:
        preview = self.query_one("#amend-preview")
        preview.display = not preview.display
        if preview.display:
            row = self.current()
            if row is not None:
                self._preview_key = None
                self._load_preview(row, self.edits.get(row.id) if row.status == "pending" else None)

    def action_cycle_filter(self) -> None:
        i = FILTERS.index(self.filter)
        self.filter = FILTERS[(i + 1) % len(FILTERS)]
        self._show_filter()
        self._fill_table()

    def _pending_row(self, verb: str) -> AmendmentView | None:
        row = self.current()
        if row is None:
            self.notify("no amendment selected", severity="warning")
            return None
        if row.id in self.busy:
            self.notify(f"amendment #{row.id}: still working on the last action", severity="warning")
            return None
        if row.status != "pending":
            self.notify(f"amendment #{row.id} is {row.status}; only pending amendments can be {verb}",
                        title="not pending", severity="warning")
            return None
        return row

    def action_review(self, name: str) -> None:
        """Run the review command ``name`` (``REVIEW``) on the highlighted pending amendment."""
        review = REVIEW[name]
        row = self._pending_row(review.done)
        if row is None:
            return
        self.busy.add(row.id)
        self.command(f"{name} amendment {row.id}", review.make(row, self.edits.get(row.id)))

    def action_edit(self) -> None:
        row = self._pending_row("edited")
        if row is None:
            return

        def kept(text: str | None) -> None:
            if text is None:
                return
            if text.strip() == row.text.strip():
                self.edits.pop(row.id, None)
            else:
                self.edits[row.id] = text.strip()
                self.notify(f"amendment #{row.id}: edit kept; press a to accept it", title="edited")
            self._fill_table()
            if self.selected == row.id:
                self._show_selected()

        self.app.push_screen(EditAmendment(row.id, row.section, self.edits.get(row.id, row.text)), kept)

    def action_confirm(self) -> None:
        """Start a confirmation campaign of the highlighted accepted amendment."""
        row = self.current()
        if row is None:
            self.notify("no amendment selected", severity="warning")
            return
        if row.status not in ("accepted", "edited"):
            self.notify(f"amendment #{row.id} is {row.status}: accept it first (a), then confirm it",
                        title="not accepted", severity="warning")
            return
        if row.id in self.busy:
            self.notify(f"amendment #{row.id}: still working on the last action", severity="warning")
            return
        self._offer_confirmation(row.id, row.campaign_id, ask=False)

    def _offer_confirmation(self, amendment_id: int, original: str | None, *, ask: bool = True) -> None:
        """Ask (after an accept) or go ahead: the confirmation campaign of the amendment."""
        if not original:
            if not ask:
                self.notify(f"amendment #{amendment_id} was not distilled from a campaign: nothing to repeat",
                            severity="warning")
            return

        def go(ok: bool | None) -> None:
            if ok:
                self.busy.add(amendment_id)
                self.command(f"confirm amendment {amendment_id}", ConfirmAmendment(amendment_id))

        if not ask:
            go(True)
            return
        from cambrian_tui.screens.dialogs import ConfirmDialog

        self.app.push_screen(ConfirmDialog(
            f"Confirm amendment #{amendment_id} with a campaign?",
            f"The new spec version runs with the settings and seed schedule of {original} (same size); "
            "its before/after viability appears here when it is judged. (c starts it later.)", danger=False), go)

    def on_command_done(self, message: CommandDone) -> None:
        r = message.result
        if isinstance(r, ConfirmationStarted):
            self.busy.discard(r.amendment_id)
            self.notify(f"confirmation campaign {r.campaign_id} started: {r.generations} generations with the "
                        f"settings and seed schedule of {r.original} (detached)", title="confirmation", timeout=8)
            row = self.by_id.get(r.amendment_id)
            if row is not None:
                self._load_confirmation(row)
            return
        if not isinstance(r, AmendmentDone):
            return
        self.busy.discard(r.amendment_id)
        self.edits.pop(r.amendment_id, None)
        if r.spec_hash:
            self.notify(f"amendment #{r.amendment_id} {r.status}: new spec version {short_hash(r.spec_hash, 12)}",
                        title=r.status, timeout=6)
            row = self.by_id.get(r.amendment_id)
            if self.filter not in (None, r.status):  # keep the accepted amendment in view
                self.filter = None
                self._show_filter()
            self._want = r.amendment_id
            if r.action == "accept" and r.confirmable and row is not None:
                self._offer_confirmation(r.amendment_id, row.campaign_id)
        else:
            self.notify(f"amendment #{r.amendment_id} {r.status}", title=r.status)
        self.reload()

    def on_command_failed(self, message: CommandFailed) -> None:
        aid = getattr(message.command, "amendment_id", None)
        if aid is None:
            super().on_command_failed(message)
            return
        self.busy.discard(aid)
        self.notify(f"amendment #{aid}: {message.reason}", title=f"{message.what.split()[0]} refused",
                    severity="error", timeout=10)
        self.reload()
