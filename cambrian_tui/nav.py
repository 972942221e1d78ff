"""Where the user asked to go, as typed targets (search hits, the palette, jumps between
screens). ``CambrianApp.navigate`` switches to the mode that shows the target, closes
whatever is open on top, and hands the target to that mode's screen (``navigate``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShowCampaign:
    campaign_id: str | None  # None: every generation


@dataclass(frozen=True)
class ShowGeneration:
    number: int


@dataclass(frozen=True)
class ShowSpec:
    spec_hash: str


@dataclass(frozen=True)
class ShowRun:
    run_id: str


@dataclass(frozen=True)
class ShowAmendments:
    ids: tuple[int, ...] = ()  # proposals to review first (the filter becomes "pending")


Target = ShowCampaign | ShowGeneration | ShowSpec | ShowRun | ShowAmendments

# the mode (top-level screen) that shows each kind of target
MODE_OF: dict[type, str] = {ShowCampaign: "main", ShowGeneration: "main", ShowSpec: "spec", ShowRun: "evolution",
                         ShowAmendments: "amendments"}


def target_of_hit(kind: str, key: str) -> Target:
    """A search hit or palette entry (kind, key) as a target."""
    if kind == "generation":
        return ShowGeneration(int(key))
    if kind == "campaign":
        return ShowCampaign(key)
    if kind == "spec":
        return ShowSpec(key)
    if kind == "evolution":
        return ShowRun(key)
    raise ValueError(f"unknown target kind {kind!r}")
