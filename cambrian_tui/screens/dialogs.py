"""Small modal dialogs: confirm, jump to generation N, one line of text, search."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import Integer
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from cambrian_tui.keys import bindings
from cambrian_tui.messages import SearchResults
from cambrian_tui.screens.base import CambrianModal
from core.app.models import SearchHit


class ConfirmDialog(CambrianModal):
    CSS_PATH = str(Path(__file__).with_name("dialogs.tcss"))
    BINDINGS = bindings("confirm")

    def __init__(self, question: str, detail: str = "", *, danger: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.detail = detail
        self.danger = danger  # Yes destroys or stops something (abort): styled as a warning

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="dialog-detail")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"Yes ({self.capp.key_label('confirm.yes')})", id="yes",
                             variant="error" if self.danger else "success")
                yield Button(f"No ({self.capp.key_label('confirm.no')})", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class JumpDialog(CambrianModal):
    """Ask for a generation number."""

    CSS_PATH = str(Path(__file__).with_name("dialogs.tcss"))
    BINDINGS = bindings("jump")

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Jump to generation", classes="dialog-title")
            yield Input(placeholder="generation number, e.g. 1234", id="jump-input",
                        validators=[Integer(minimum=0)], type="integer")
            yield Static("[dim]enter to jump · escape to cancel[/]", classes="dialog-detail")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip().lstrip("#")
        if value.isdigit():
            self.dismiss(int(value))
        else:
            self.app.bell()

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(CambrianModal):
    """Ask for one line of text (a dismissal's reason, a host's address): enter confirms,
    escape cancels; an empty answer is refused here, before any command runs."""

    CSS_PATH = str(Path(__file__).with_name("dialogs.tcss"))
    BINDINGS = bindings("jump")

    def __init__(self, question: str, detail: str = "", *, placeholder: str = "",
                 empty: str = "an answer is needed") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.detail = detail
        self.placeholder = placeholder
        self.empty = empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="dialog-detail", markup=False)
            yield Input(placeholder=self.placeholder, id="text-input")
            yield Static("[dim]enter to confirm · escape to cancel[/]", classes="dialog-detail")

    def on_mount(self) -> None:
        self.query_one("#text-input", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())
        else:
            self.notify(self.empty, severity="warning", timeout=3)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SearchDialog(CambrianModal):
    """`/` search over generations (number, failure reason, stage), campaigns and specs."""

    CSS_PATH = str(Path(__file__).with_name("dialogs.tcss"))
    BINDINGS = bindings("search")

    def __init__(self, initial: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.initial = initial
        self.hits: list[SearchHit] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog search-dialog"):
            yield Label("Search", classes="dialog-title")
            yield Input(value=self.initial, placeholder="#123, failure text, stage, campaign id, spec label…",
                        id="search-input")
            yield OptionList(id="search-results")
            yield Static("[dim]type to search · ↓ to pick · enter to open · escape to close[/]",
                         classes="dialog-detail")

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()
        if self.initial:
            self._search(self.initial)

    @on(Input.Changed, "#search-input")
    def _changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @on(Input.Submitted, "#search-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.hits:
            self.dismiss(self.hits[0])

    def _search(self, query: str) -> None:
        reads = self.reads
        self.background("search", lambda: SearchResults(query, reads.search(query)))

    def on_search_results(self, message: SearchResults) -> None:
        if message.query != self.query_one("#search-input", Input).value:
            return
        self.hits = message.hits
        ol = self.query_one("#search-results", OptionList)
        ol.clear_options()
        if not message.hits:
            ol.add_option(Option("[dim]no matches[/]" if message.query.strip() else "[dim]…[/]", disabled=True))
            return
        for i, h in enumerate(message.hits):
            ol.add_option(Option(f"[b]{h.label}[/]  [dim]{h.detail}[/]", id=str(i)))

    @on(OptionList.OptionSelected, "#search-results")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.hits[int(event.option.id)])

    def action_focus_results(self) -> None:
        ol = self.query_one("#search-results", OptionList)
        if self.hits:
            ol.focus()
            if ol.highlighted is None:
                ol.highlighted = 0

    def action_cancel(self) -> None:
        self.dismiss(None)
