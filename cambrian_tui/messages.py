"""Messages that workers post back to the UI thread, and widget-to-screen messages.

Workers never touch widgets: they build plain values (see ``cambrian_tui.data``) and
post one of these; the handler runs on the UI thread.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from cambrian_tui.data import (
    CampaignInfo,
    CampaignSummary,
    GenerationDetail,
    LineageModel,
    SearchHit,
    SpecDoc,
    SpecVersionInfo,
    StatusInfo,
)


class DbChanged(Message):
    """Another connection committed to the database (PRAGMA data_version moved)."""

    def __init__(self, version: int) -> None:
        super().__init__()
        self.version = version


class CampaignsLoaded(Message):
    """The campaign list; ``select`` (first load only) is the campaign to attach to."""

    def __init__(self, campaigns: list[CampaignInfo], select: str | None = None) -> None:
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
    def __init__(self, status: StatusInfo) -> None:
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
    def __init__(self, detail: GenerationDetail, failed: list[int]) -> None:
        super().__init__()
        self.detail = detail
        self.failed = failed


class SpecVersionsLoaded(Message):
    def __init__(self, versions: list[SpecVersionInfo]) -> None:
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
    """A worker failed; the UI shows ``what`` and the error instead of crashing."""

    def __init__(self, what: str, error: BaseException | str, extra: Any = None) -> None:
        super().__init__()
        self.what = what
        self.error = error
        self.extra = extra


class GenerationHighlighted(Message):
    """The cursor of the generation tree moved onto a generation."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number


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


class CommandSent(Message):
    def __init__(self, campaign_id: str, command: str) -> None:
        super().__init__()
        self.campaign_id = campaign_id
        self.command = command


class Distilled(Message):
    """The distiller finished on a campaign: what it analysed and proposed."""

    def __init__(self, campaign_id: str, analysed: int, significant: int, proposed: int,
                 skipped: list[str]) -> None:
        super().__init__()
        self.campaign_id = campaign_id
        self.analysed = analysed
        self.significant = significant
        self.proposed = proposed
        self.skipped = skipped


class CampaignStarted(Message):
    def __init__(self, campaign_id: str) -> None:
        super().__init__()
        self.campaign_id = campaign_id


class FileRendered(Message):
    """A file of an artifact, highlighted off the UI thread."""

    def __init__(self, number: int, path: str, content, line: int | None) -> None:
        super().__init__()
        self.number = number
        self.path = path
        self.content = content
        self.line = line
