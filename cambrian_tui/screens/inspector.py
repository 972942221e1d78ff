"""Generation inspector: the viability report stage by stage, failed tests with error and
location, stdout/stderr tails, the artifact's files (highlighted), the diff against the
parent, the rig log, the LLM calls, the fertility test and the hidden probe layers (sealed
vectors, examiner and red-team probes: expected vs actual; a wrong examiner probe is
dismissed here). Jump failure to failure without leaving it."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.markup import escape
from textual.widgets import DataTable, Footer, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from cambrian_tui.keys import bindings
from cambrian_tui.messages import CommandDone, DetailLoaded, FileRendered, LogBatch
from cambrian_tui.screens.base import CambrianScreen
from cambrian_tui.widgets.log_view import LogView
from core.app.fmt import human_ms, human_tokens
from core.app.layers import LAYER_SHORT, LayerProbe
from core.app.models import CheckRow, FileDiff, GenerationDetail, short_hash

MAX_VIEW_BYTES = 400_000
TABS = ("report", "output", "files", "diff", "log", "llm", "repro", "layers")


def code_content(path: str, data: bytes, *, line_numbers: bool = True, mark_line: int | None = None) -> Content:
    if b"\0" in data[:4096]:
        return Content.from_markup(f"[dim]{path}: binary file, {len(data)} bytes[/]")
    truncated = len(data) > MAX_VIEW_BYTES
    text = data[:MAX_VIEW_BYTES].decode("utf-8", errors="replace")
    try:
        body = highlight(text, path=path)
    except Exception:
        body = Content(text)
    if not line_numbers:
        return body
    lines = body.split("\n", allow_blank=True)
    width = len(str(len(lines)))
    out = []
    for i, line in enumerate(lines, 1):
        if i == mark_line:
            out.append(Content.assemble((f"{i:>{width}}▶", "bold $text-error"), line.stylize("on $error 25%")))
        else:
            out.append(Content.assemble((f"{i:>{width}} ", "$text-muted"), line))
    if truncated:
        out.append(Content.from_markup(f"[dim]… truncated at {MAX_VIEW_BYTES} bytes[/]"))
    return Content("\n").join(out)


def diff_content(d: FileDiff) -> Content:
    if d.status == "same":
        return Content.from_markup("[dim]unchanged[/]")
    out = []
    for line in d.lines:
        if line.startswith(("+++", "---")):
            out.append(Content.styled(line, "bold"))
        elif line.startswith("@@"):
            out.append(Content.styled(line, "$text-accent"))
        elif line.startswith("+"):
            out.append(Content.styled(line, "$text-success on $success 10%"))
        elif line.startswith("-"):
            out.append(Content.styled(line, "$text-error on $error 10%"))
        else:
            out.append(Content(line))
    return Content("\n").join(out)


def tail_content(text: str, empty: str) -> Content:
    if not text:
        return Content.from_markup(f"[dim]{empty}[/]")
    return Content(text.rstrip("\n"))


class InspectorScreen(CambrianScreen):
    CSS_PATH = str(Path(__file__).with_name("inspector.tcss"))
    HELP_TITLE = "Generation inspector"

    BINDINGS = bindings("inspector")
    WATCH = frozenset({"generations", "logs"})

    def __init__(self, number: int, campaign_id: str | None = None) -> None:
        super().__init__()
        self.number = number
        self.campaign_id = campaign_id
        self.detail: GenerationDetail | None = None
        self.failed: list[int] = []
        self.rows: list[CheckRow] = []
        self.diffs: list[FileDiff] = []
        self.file_paths: list[str] = []
        self._epoch = 0
        self._log_last = 0
        self._log_inflight = False
        self._log_again = False
        self._pending_line: int | None = None
        self._check_widths: tuple[int, int] | None = None
        self.layer_probes: list[LayerProbe] = []
        self._layers_of: int | None = None
        self._layer_widths: tuple[int, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="insp-header")
        with TabbedContent(id="insp-tabs", initial="tab-report"):
            with TabPane("Report", id="tab-report"):
                with Vertical():
                    yield DataTable(id="checks", cursor_type="row")
                    yield Static("", id="check-detail")
            with TabPane("Output", id="tab-output"):
                with Horizontal():
                    with VerticalScroll(id="stdout-box", can_focus=True):
                        yield Static("", id="stdout")
                    with VerticalScroll(id="stderr-box", can_focus=True):
                        yield Static("", id="stderr")
            with TabPane("Files", id="tab-files"):
                with Horizontal():
                    yield OptionList(id="file-list")
                    with VerticalScroll(id="file-box", can_focus=True):
                        yield Static("", id="file-code")
            with TabPane("Diff vs parent", id="tab-diff"):
                with Horizontal():
                    yield OptionList(id="diff-list")
                    with VerticalScroll(id="diff-box", can_focus=True):
                        yield Static("", id="diff-code")
            with TabPane("Rig log", id="tab-log"):
                yield LogView(id="insp-log", max_lines=20_000)
            with TabPane("LLM calls", id="tab-llm"):
                yield DataTable(id="llm", cursor_type="row")
            with TabPane("Reproduction", id="tab-repro"):
                with VerticalScroll(id="repro-box", can_focus=True):
                    yield Static("", id="repro")
            with TabPane("Layers", id="tab-layers"):
                with Vertical():
                    yield DataTable(id="layers", cursor_type="row")
                    with VerticalScroll(id="layer-box"):
                        yield Static("", id="layer-detail")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._layout_checks()
        llm = self.query_one("#llm", DataTable)
        for col in ("provider", "model", "purpose", "in", "out", "cache r/w", "cost", "latency", "outcome", "sim"):
            llm.add_column(col, key=col)
        self._layout_layers()
        self.query_one("#stdout-box").border_title = "stdout tail"
        self.query_one("#stderr-box").border_title = "stderr tail"
        self.query_one("#file-list").border_title = "Files"
        self.query_one("#diff-list").border_title = "Changed files"
        self.load(self.number)

    def on_resize(self) -> None:
        if self._layout_checks() and self.detail is not None:
            self._show_report(self.detail, reset_cursor=False)
        if self._layout_layers() and self.detail is not None:
            self._show_layers(self.detail)

    def _layout_layers(self) -> bool:
        """The Layers table's columns share the width: the probe's name 30%, its request 25%,
        the expectation 30%, the answer the rest. True when they changed."""
        room = max(40, self.app.size.width - 4) - 1 - 8 - 12  # mark, layer, cell padding
        probe, request, expected = int(room * 0.30), int(room * 0.25), int(room * 0.30)
        widths = (probe, request, expected, max(6, room - probe - request - expected))
        if widths == self._layer_widths:
            return False
        self._layer_widths = widths
        table = self.query_one("#layers", DataTable)
        table.clear(columns=True)
        table.add_column("", key="mark", width=1)
        table.add_column("layer", key="layer", width=8)
        for name, w in zip(("probe", "request", "expected", "actual"), widths):
            table.add_column(name, key=name, width=w)
        return True

    def _layout_checks(self) -> bool:
        """Proportional columns: the check's name gets 45% of what result and time leave
        (at least 16, at most 56), the detail the rest. True when they changed."""
        width = max(40, self.app.size.width - 4)
        room = width - 7 - 7 - 8  # result, time, cell padding
        name = max(16, min(56, int(room * 0.45)))
        widths = (name, max(10, room - name))
        if widths == self._check_widths:
            return False
        self._check_widths = widths
        checks = self.query_one("#checks", DataTable)
        checks.clear(columns=True)
        checks.add_column("check", key="check", width=widths[0])
        checks.add_column("result", key="result", width=7)
        checks.add_column("time", key="time", width=7)
        checks.add_column("detail", key="detail", width=widths[1])
        return True

    # loading --------------------------------------------------------------------------------

    def load(self, number: int) -> None:
        self.number = number
        self._epoch += 1
        self._log_last = 0
        reads = self.reads
        self.background("generation", lambda: DetailLoaded(reads.generation_detail(number)))
        self._fetch_log(reset=True)

    def _fetch_log(self, reset: bool) -> None:
        """Single-flight: one fetch at a time, from the last chunk id; more changes that
        arrive meanwhile cause exactly one more fetch."""
        if reset:
            self._log_inflight = False
        elif self._log_inflight:
            self._log_again = True
            return
        self._log_inflight = True
        self._log_again = False
        n, epoch = self.number, self._epoch
        after = 0 if reset else self._log_last
        reads = self.reads
        self.background("log", lambda: LogBatch(n, *reads.log_tail(n, after_id=after), reset, epoch),
                        group=f"insp-log-{epoch}", exclusive=False)

    def on_data(self, topics: frozenset[str]) -> None:
        d = self.detail
        if d is None or d.outcome not in ("in_progress", "tested"):
            return  # finished generations never change
        if "logs" in topics:
            self._fetch_log(reset=False)
        if "generations" not in topics:
            return
        n, seen, reads = self.number, d.updated_at, self.reads

        def check():
            if reads.generation_updated_at(n) == seen:
                return None
            return DetailLoaded(reads.generation_detail(n))

        self.background("generation-refresh", check)

    def on_log_batch(self, message: LogBatch) -> None:
        if message.epoch != self._epoch:
            return
        self._log_inflight = False
        log = self.query_one("#insp-log", LogView)
        if message.reset:
            log.set_lines(message.lines)
        else:
            log.append(message.lines)
        self._log_last = max(self._log_last, message.last_id)
        log.border_title = f"rig log · {log.line_count} lines"
        if self._log_again:
            self._fetch_log(reset=False)

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        d = message.detail
        if d.number != self.number:
            return
        first = self.detail is None or self.detail.number != d.number
        self.detail = d
        self.failed = list(d.failed_numbers)
        self._show_header(d)
        self._show_report(d, reset_cursor=first)
        self._show_output(d)
        if first:
            self._show_files(d)
            self._show_diff(d)
        self._show_llm(d)
        self._show_reproduction(d)
        self._show_layers(d)

    # rendering ---------------------------------------------------------------------------------

    def _show_header(self, d: GenerationDetail) -> None:
        colour = {"promoted": "$text-success", "failed": "$text-error", "timeout": "$text-warning",
                  "in_progress": "$text-accent"}.get(d.outcome, "$text")
        parent = f" ← #{d.parent}" if d.parent is not None else " (root)"
        verdict = d.outcome
        if d.failure_stage and d.failure_stage != "none":
            verdict += f" at {d.failure_stage}"
        pos = ""
        if d.number in self.failed:
            pos = f" · failure {self.failed.index(d.number) + 1} of {len(self.failed)}"
        sim = " [reverse $text-warning] SIMULATED [/]" if d.simulated else ""
        line1 = (f"[b]Generation #{d.number}[/b]{parent}  [{colour}]{verdict}[/]"
                 f"  [dim]campaign[/] {d.campaign_id or '-'}  [dim]attempt[/] {d.attempt}{pos}{sim}")
        reason = f"[dim]reason[/] {escape(d.reason)}  " if d.reason else ""  # data, not markup
        line2 = (f"{reason}[dim]artifact[/] {short_hash(d.artifact_hash)} · {len(d.files)} files"
                 f"  [dim]spec[/] {short_hash(d.spec_hash)}  [dim]created[/] {d.created_at}")
        self.query_one("#insp-header", Static).update(Content.from_markup(line1 + "\n" + line2))
        self.sub_title = f"#{d.number}"

    def _show_report(self, d: GenerationDetail, reset_cursor: bool) -> None:
        table = self.query_one("#checks", DataTable)
        keep = table.cursor_row
        table.clear()
        self.rows = list(d.check_rows)
        if not self.rows:
            msg = "no viability report yet" if d.outcome in ("in_progress", "tested") else "no viability report"
            table.add_row(Content.from_markup(f"[dim]{msg}[/]"), "", "", "", key="none")
            self.query_one("#check-detail", Static).update(self._no_report_text(d))
            return
        if d.report_problem:
            self.notify(d.report_problem, title=f"generation #{d.number}", severity="warning", timeout=6)
        for row in self.rows:
            indent = "  " * row.depth
            if row.passed is None:
                result = Content.from_markup("[dim]–[/]")
                name = Content.from_markup(f"[dim]{indent}{row.name}[/]")
            elif row.passed:
                result = Content.from_markup("[$text-success]✓ pass[/]")
                name = Content(indent + row.name)
            else:
                result = Content.from_markup("[$text-error b]✗ FAIL[/]")
                name = Content.styled(indent + row.name, "$text-error" if row.depth else "bold $text-error")
            detail = row.detail  # the error first: the location is in the panel below
            if row.location:
                detail = f"{detail} · {row.location}" if detail else row.location
            table.add_row(name, result, row.duration, detail, key=row.key)
        if reset_cursor:
            first_fail = next((i for i, r in enumerate(self.rows) if r.failed and r.depth), None)
            if first_fail is None:
                first_fail = next((i for i, r in enumerate(self.rows) if r.failed), 0)
            table.move_cursor(row=first_fail, animate=False)
        else:
            table.move_cursor(row=min(keep, len(self.rows) - 1), animate=False)
        self._show_check_detail(table.cursor_row)

    def _no_report_text(self, d: GenerationDetail) -> Content:
        """Why there is no report: the reason (data, never markup: "[no-files]" is no tag) and
        where the rest is, for a generation that never reached the rig."""
        if not d.reason:
            return Content("")
        parts = [Content.styled(d.reason, "dim")]
        if d.failure_stage == "generate" and d.log_lines:
            parts.append(Content.styled(f"The model's answer is in the Rig log tab "
                                        f"({self.capp.key_label('inspector.tab.log')}); each call it took in "
                                        f"LLM calls ({self.capp.key_label('inspector.tab.llm')}).", "dim"))
        return Content("\n").join(parts)

    def _show_check_detail(self, index: int) -> None:
        box = self.query_one("#check-detail", Static)
        if not (0 <= index < len(self.rows)):
            # no report: the "no viability report" row keeps the reason below it
            box.update(self._no_report_text(self.detail) if not self.rows and self.detail else "")
            return
        row = self.rows[index]
        status = "did not run" if row.passed is None else ("passed" if row.passed else "FAILED")
        parts = [f"[b]{row.name}[/b] — {status}"]
        if row.location:
            parts.append(f"[dim]location[/] [$text-accent]{row.location}[/]  [dim](o opens the file)[/]")
        text = Content.from_markup("\n".join(parts))
        if row.error:
            text = Content("\n").join([text, Content.styled(row.error, "$text-error")])
        elif row.detail:
            text = Content("\n").join([text, Content(row.detail)])
        if row.body_excerpt:  # what the service answered: often the whole explanation
            head = Content.from_markup("\n[dim]── response body (excerpt) ──[/]")
            text = Content("\n").join([text, head, Content(row.body_excerpt)])
        # a glance at the output of the failing stage (the Output tab has all of it)
        diag = self.detail.diagnostics if self.detail is not None else {}
        if row.failed and diag and diag.get("stage") == row.stage:
            for name in ("stderr_tail", "stdout_tail"):
                tail = (diag.get(name) or "").rstrip("\n").splitlines()[-12:]
                if tail:
                    label = name.replace("_tail", "")
                    head = Content.from_markup(f"\n[dim]── last {len(tail)} lines of {label} (2: all output) ──[/]")
                    text = Content("\n").join([text, head, Content("\n".join(tail))])
                    break
        box.update(text)

    @on(DataTable.RowHighlighted, "#checks")
    def _check_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_check_detail(event.cursor_row)

    @on(DataTable.RowSelected, "#checks")
    def _check_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_location()

    def _show_output(self, d: GenerationDetail) -> None:
        diag = d.diagnostics
        out, err = diag.get("stdout_tail", ""), diag.get("stderr_tail", "")
        self.query_one("#stdout", Static).update(tail_content(out, "no stdout captured"))
        self.query_one("#stderr", Static).update(tail_content(err, "no stderr captured"))
        # an empty stream gets a title, not half the width
        self.query_one("#stdout-box").set_class(not out and bool(err), "-empty")
        self.query_one("#stderr-box").set_class(not err and bool(out), "-empty")

    def _show_files(self, d: GenerationDetail) -> None:
        ol = self.query_one("#file-list", OptionList)
        ol.clear_options()
        self.file_paths = sorted(d.files)
        for p in self.file_paths:
            size = len(d.files[p])
            ol.add_option(Option(Content.assemble(p, (f"  {size:,} B", "$text-muted")), id=p))
        ol.border_title = f"Files ({len(self.file_paths)})"
        if self.file_paths:
            main = next((p for p in self.file_paths if p.endswith(".py") and "test" not in p and p.endswith(
                ("server.py", "app.py", "main.py"))), self.file_paths[0])
            ol.highlighted = self.file_paths.index(main)
            self._open_file(main)
        else:
            self.query_one("#file-code", Static).update(Content.from_markup("[dim]no artifact files recorded[/]"))

    def _open_file(self, path: str, line: int | None = None) -> None:
        """Highlighting runs on a worker (a big file must not stall the UI)."""
        d = self.detail
        if d is None or path not in d.files:
            return
        data, number = d.files[path], d.number
        self.query_one("#file-box", VerticalScroll).border_title = f"{path} …"
        self.background("file", lambda: FileRendered(number, path, code_content(path, data, mark_line=line), line))

    def on_file_rendered(self, message: FileRendered) -> None:
        if self.detail is None or message.number != self.detail.number:
            return
        box = self.query_one("#file-box", VerticalScroll)
        box.border_title = message.path
        self.query_one("#file-code", Static).update(message.content)
        target = max(0, (message.line or 1) - 4)
        box.call_after_refresh(box.scroll_to, 0, target, animate=False)

    @on(OptionList.OptionHighlighted, "#file-list")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            line = self._pending_line
            self._pending_line = None
            self._open_file(event.option.id, line)

    @on(OptionList.OptionSelected, "#file-list")
    def _file_selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#file-box").focus()

    def _show_diff(self, d: GenerationDetail) -> None:
        ol = self.query_one("#diff-list", OptionList)
        ol.clear_options()
        code = self.query_one("#diff-code", Static)
        if d.parent is None:
            self.diffs = []
            ol.border_title = "Changed files"
            code.update(Content.from_markup("[dim]a root generation has no parent to diff against[/]"))
            return
        if d.parent_files is None:
            self.diffs = []
            code.update(Content.from_markup(f"[dim]parent #{d.parent} has no recorded artifact[/]"))
            return
        self.diffs = [x for x in (d.diffs or []) if x.status != "same"]
        same = len(set(d.parent_files) & set(d.files)) - sum(1 for x in self.diffs if x.status == "modified")
        for x in self.diffs:
            sign = {"modified": "M", "added": "A", "removed": "D"}[x.status]
            ol.add_option(Option(Content.assemble((f"{sign} ", "bold"), x.path,
                                                  (f"  +{x.added}", "$text-success"),
                                                  (f" -{x.removed}", "$text-error")), id=x.path))
        ol.border_title = f"vs #{d.parent}: {len(self.diffs)} changed, {same} same"
        if self.diffs:
            ol.highlighted = 0
            self._open_diff(self.diffs[0].path)
        else:
            code.update(Content.from_markup(f"[dim]identical to parent #{d.parent}[/]"))

    def _open_diff(self, path: str) -> None:
        d = next((x for x in self.diffs if x.path == path), None)
        if d is None:
            return
        box = self.query_one("#diff-box", VerticalScroll)
        box.border_title = f"{path} ({d.status})"
        self.query_one("#diff-code", Static).update(diff_content(d))
        box.scroll_home(animate=False)

    @on(OptionList.OptionHighlighted, "#diff-list")
    def _diff_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self._open_diff(event.option.id)

    def _show_llm(self, d: GenerationDetail) -> None:
        table = self.query_one("#llm", DataTable)
        table.clear()
        for c in d.llm_calls:
            table.add_row(c.provider, c.model, c.purpose, human_tokens(c.input_tokens),
                          human_tokens(c.output_tokens),
                          f"{human_tokens(c.cache_read_input_tokens)}/{human_tokens(c.cache_creation_input_tokens)}",
                          f"${c.cost_usd:.4f}" if c.price_known else "$? unknown",  # never "free"
                          human_ms(c.latency_ms), c.outcome, "SIM" if c.simulated else "")
        if not d.llm_calls:
            table.add_row("[dim]no LLM calls recorded[/]", *[""] * 9)

    def _show_reproduction(self, d: GenerationDetail) -> None:
        from core.app.reproduction import reproduction_lines

        lines = reproduction_lines(d.reproduction, d.bred_by, d.number)
        colour = {"fertile": "$text-success", "infertile": "$text-error", "error": "$text-warning"}
        out = []
        for i, line in enumerate(lines):
            if i == (2 if d.bred_by is not None else 0) and d.reproduction is not None:
                out.append(Content.styled(line, f"bold {colour.get(d.reproduction.status, '$text')}"))
            else:
                out.append(Content(line))
        self.query_one("#repro", Static).update(Content("\n").join(out))

    def _show_layers(self, d: GenerationDetail) -> None:
        from core.app.layers import layer_lines

        table = self.query_one("#layers", DataTable)
        keep = table.cursor_row if self.layer_probes and d.number == self._layers_of else 0
        table.clear()
        self.layer_probes = [p for v in d.layers for p in v.probes]
        self._layers_of = d.number
        for i, p in enumerate(self.layer_probes):
            mark = (Content.styled("·", "dim") if p.passed is None else Content.styled("✓", "$text-success")
                    if p.passed else Content.styled("✗", "bold $text-error"))
            # the flag first: a narrow column cuts the name's end, never the flag
            name = Content(p.name)
            if p.suspect:
                name = Content.assemble(("⚠ ", "bold $text-warning"), name)
            elif p.dismissed:
                name = Content.styled(f"⊘ {p.name}", "dim strike")
            # probe texts are data (bodies hold brackets): never read as markup
            table.add_row(mark, Content(LAYER_SHORT[p.layer]), name, Content(p.request), Content(p.expected),
                          Content(p.actual), key=str(i))
        box = self.query_one("#layer-box")
        box.border_title = " · ".join(f"{v.title}: {v.mode}, {v.passed}/{v.total}" for v in d.layers) or "Layers"
        if not self.layer_probes:
            self.query_one("#layer-detail", Static).update(Content("\n".join(layer_lines(d.layers, d.number))))
            return
        table.move_cursor(row=min(keep, len(self.layer_probes) - 1))
        self._show_layer_probe(table.cursor_row)

    def _show_layer_probe(self, index: int) -> None:
        from core.app.layers import LAYER_TITLES

        d = self.detail
        if d is None or not 0 <= index < len(self.layer_probes):
            return
        p = self.layer_probes[index]
        view = next(v for v in d.layers if v.kind == p.layer)
        lines = [Content.styled(f"{LAYER_TITLES[p.layer]} — {view.mode} — {view.passed}/{view.total} passed"
                                + (f" · {view.note}" if view.note else ""), "bold"),
                 Content(f"{p.name}: {p.request}" + (f"  body {p.body}" if p.body else "")),
                 Content.assemble(f"expected {p.expected}  → ",
                                  (f"actual {p.actual}", "$text-success" if p.passed else "bold $text-error"),
                                  f"  ({p.error})" if p.error and not p.passed else "")]
        if p.note:  # before the body: a short terminal keeps the suspect flag and the quote
            lines.append(Content.styled(p.note, "$text-warning" if p.suspect else "dim"))
        if p.body_excerpt:
            lines.append(Content(f"body: {p.body_excerpt}"))
        if p.layer == "examiner" and not p.dismissed:
            lines.append(Content.styled(f"{self.capp.key_label('inspector.dismiss')}: dismiss this probe as wrong "
                                        "(it stops counting; its evidence is kept)", "dim"))
        self.query_one("#layer-detail", Static).update(Content("\n").join(lines))

    @on(DataTable.RowHighlighted, "#layers")
    def _layer_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_layer_probe(event.cursor_row)

    def action_dismiss_probe(self) -> None:
        from cambrian_tui.screens.dialogs import TextDialog
        from core.app.commands import DismissProbe

        d = self.detail
        table = self.query_one("#layers", DataTable)
        if self.query_one("#insp-tabs", TabbedContent).active != "tab-layers" or d is None:
            self.notify("open the Layers tab (8) and pick an examiner probe", timeout=3)
            return
        index = table.cursor_row
        p = self.layer_probes[index] if 0 <= index < len(self.layer_probes) else None
        if p is None or p.layer != "examiner":
            self.notify("only an examiner probe can be dismissed", timeout=3)
            return
        if p.dismissed:
            self.notify(f"{p.name} is already dismissed", timeout=3)
            return
        model = (d.report_raw or {}).get("examiner_set", {}).get("model")

        def done(reason: str | None) -> None:
            if reason:
                self.command(f"dismiss {p.name}", DismissProbe(spec=d.spec_hash, probe=p.name, reason=reason,
                                                               model=model))

        self.app.push_screen(TextDialog(f"Dismiss examiner probe {p.name}?",
                                        f"{p.request} — expected {p.expected}, this artifact answered "
                                        f"{p.actual}. {p.note}".strip(),
                                        placeholder="why, e.g. the spec never says so",
                                        empty="a dismissal needs a reason"), done)

    def on_command_done(self, message: CommandDone) -> None:
        self.notify(f"{message.what}: it stops counting from now on", timeout=4)
        if self.detail is not None:
            self.load(self.detail.number)

    # actions -------------------------------------------------------------------------------------

    def action_open_bred(self) -> None:
        d = self.detail
        off = d.reproduction.offspring if d is not None and d.reproduction is not None else None
        if off is None:
            self.notify("this generation bred nothing that was judged", timeout=2)
            return
        self.load(off.number)

    def action_back(self) -> None:
        self.dismiss()

    def action_tab(self, name: str) -> None:
        self.query_one("#insp-tabs", TabbedContent).active = f"tab-{name}"
        focus = {"report": "#checks", "output": "#stdout-box", "files": "#file-list", "diff": "#diff-list",
                 "log": "#insp-log", "llm": "#llm", "repro": "#repro-box", "layers": "#layers"}[name]
        self.query_one(focus).focus()

    def _jump(self, direction: int) -> None:
        if not self.failed:
            self.notify("no failed generations", timeout=2)
            return
        cur = self.number
        if direction > 0:
            target = next((n for n in self.failed if n > cur), None)
        else:
            target = next((n for n in reversed(self.failed) if n < cur), None)
        if target is None:
            self.notify("no more failed generations in this direction", timeout=2)
            self.app.bell()
            return
        self.load(target)

    def action_next_failed(self) -> None:
        self._jump(+1)

    def action_prev_failed(self) -> None:
        self._jump(-1)

    def action_parent(self) -> None:
        if self.detail is not None and self.detail.parent is not None:
            self.load(self.detail.parent)
        else:
            self.notify("this generation has no parent", timeout=2)

    def action_next_failed_stage(self) -> None:
        self.action_tab("report")
        fails = [i for i, r in enumerate(self.rows) if r.failed]
        if not fails:
            self.notify("nothing failed in this report", timeout=2)
            return
        table = self.query_one("#checks", DataTable)
        cur = table.cursor_row
        target = next((i for i in fails if i > cur), fails[0])
        table.move_cursor(row=target, animate=False)

    def action_open_location(self) -> None:
        """Open the file (at the line) of the failure under the cursor, else the file list."""
        table = self.query_one("#checks", DataTable)
        row = self.rows[table.cursor_row] if 0 <= table.cursor_row < len(self.rows) else None
        path, line = None, None
        if row is not None and row.location:
            path, _, ln = row.location.partition(":")
            line = int(ln) if ln.isdigit() else None
        self.action_tab("files")
        if path and path in self.file_paths:
            ol = self.query_one("#file-list", OptionList)
            idx = self.file_paths.index(path)
            if ol.highlighted == idx:
                self._open_file(path, line)
            else:
                self._pending_line = line
                ol.highlighted = idx
            self.query_one("#file-box").focus()
