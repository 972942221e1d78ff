"""Messages that workers post back to the UI thread, and widget-to-screen messages.

Workers never touch widgets: they build read models (``core.app.models``) and post one of
these; the handler runs on the UI thread.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from core.app.changes import Changes
from core.app.models import (
    CampaignSummary,
    CampaignView,
    GenerationDetail,
    LineageModel,
    SearchHit,
    SpecDoc,
    SpecVersionView,
    StatusView,
)


class DataChanged(Message):
    """Something was committed to the store; ``changes.topics`` says what."""

    def __init__(self, changes: Changes) -> None:
        super().__init__()
        self.changes = changes


class CampaignsLoaded(Message):
    """The campaign list; ``select`` (first load only) is the campaign to attach to."""

    def __init__(self, campaigns: list[CampaignView], select: str | None = None) -> None:
        super().__init__()
        self.campaigns = campaigns
        self.select = select


class LineageLoaded(Message):
    def __init__(self, model: LineageModel) -> None:
        super().__init__()
        self.model = model


class SummaryLoaded(Message):
    def __init__(self, summary: CampaignSummary) -> None:
        super().__init__()
        self.summary = summary


class StatusLoaded(Message):
    def __init__(self, status: StatusView) -> None:
        super().__init__()
        self.status = status


class LogBatch(Message):
    """Lines of one generation's rig log, after ``last_id``; ``reset`` starts afresh."""

    def __init__(self, generation: int, lines: list[tuple[str, str]], last_id: int, reset: bool,
                 epoch: int = 0) -> None:
        super().__init__()
        self.generation = generation
        self.lines = lines
        self.last_id = last_id
        self.reset = reset
        self.epoch = epoch


class DetailLoaded(Message):
    def __init__(self, detail: GenerationDetail) -> None:
        super().__init__()
        self.detail = detail


class SpecVersionsLoaded(Message):
    def __init__(self, versions: list[SpecVersionView]) -> None:
        super().__init__()
        self.versions = versions


class SpecDiffLoaded(Message):
    def __init__(self, left: SpecDoc, right: SpecDoc) -> None:
        super().__init__()
        self.left = left
        self.right = right


class SearchResults(Message):
    def __init__(self, query: str, hits: list[SearchHit]) -> None:
        super().__init__()
        self.query = query
        self.hits = hits


class LoadFailed(Message):
    """A read failed; the UI shows ``what`` and the error instead of crashing."""

    def __init__(self, what: str, error: BaseException | str, extra: Any = None) -> None:
        super().__init__()
        self.what = what
        self.error = error
        self.extra = extra


class CommandDone(Message):
    """A command (``core.app.commands``) finished; ``result`` is its typed result."""

    def __init__(self, what: str, command: Any, result: Any) -> None:
        super().__init__()
        self.what = what
        self.command = command
        self.result = result


class CommandFailed(Message):
    """A command was refused (``reason``; ``errors``: form field -> message) or broke."""

    def __init__(self, what: str, command: Any, reason: str, errors: dict[str, str] | None = None) -> None:
        super().__init__()
        self.what = what
        self.command = command
        self.reason = reason
        self.errors = dict(errors or {})


class GenerationHighlighted(Message):
    """The cursor of the generation tree moved onto a generation; ``by_user``: a key or a
    click moved it (not a reload, a reveal or the tree being rebuilt)."""

    def __init__(self, number: int, by_user: bool = False) -> None:
        super().__init__()
        self.number = number
        self.by_user = by_user


class GenerationChosen(Message):
    """The user asked to open a generation (Enter on a tree node)."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number


class JumpResolved(Message):
    """Generation ``number`` lives in ``campaign_id`` (None: no campaign)."""

    def __init__(self, number: int, campaign_id: str | None) -> None:
        super().__init__()
        self.number = number
        self.campaign_id = campaign_id


class FileRendered(Message):
    """A file of an artifact, highlighted off the UI thread."""

    def __init__(self, number: int, path: str, content, line: int | None) -> None:
        super().__init__()
        self.number = number
        self.path = path
        self.content = content
        self.line = line


class ConnectionTested(Message):
    """A start form's "Test connection" finished: ``result`` (``ConnectionChecked``), or the
    reason it could not run (``errors``: form field -> message)."""

    def __init__(self, result: Any = None, reason: str = "", errors: dict[str, str] | None = None) -> None:
        super().__init__()
        self.result = result
        self.reason = reason
        self.errors = dict(errors or {})
