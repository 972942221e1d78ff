"""Evolution runs in words: lines the status listing and the TUI share (pure)."""

from __future__ import annotations

from typing import Any


def current_line(cur: dict[str, Any] | None, alive: bool = True) -> str:
    """One line for the step in progress ("" when there is none); ``alive``: a process is
    running it (else it is where a paused, stopped or killed run will go on)."""
    if not cur:
        return ""
    what = {"base": "base campaign", "screen": "screening", "full": "full campaign"}[cur["phase"]]
    who = "" if cur["index"] is None else f" #{cur['index']} {cur['detail']} ({cur['model']})"
    return f"{'now' if alive else 'left off in'}: {what}{who}, {cur['done']}/{cur['planned']} generations judged"


def prior_line(prior: dict[str, Any] | None) -> str:
    """What BO started from (the status listing and the TUI share it)."""
    if not prior:
        return "prior: none, a cold start (no earlier run in this home improved on its base, or --no-prior)"
    means = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(prior["by_operator"].items(), key=lambda kv: kv[1]))
    n = len(prior["runs"])
    runs = f"{n} earlier run{'s' if n != 1 else ''}"
    if prior["observations"]:
        line = f"prior: {prior['observations']} observations of {runs} ({means})"
    else:  # only one-shot evidence
        line = f"prior: {runs} (no rewrite or crossover while climbing)"
    deferred = prior.get("deferred") or []  # absent in status JSON written before it existed
    if deferred:
        line += "; not swept (never paid): " + ", ".join(deferred)
    return line


def outcome_label(r: dict[str, Any]) -> str:
    """What became of an observation, in words (the status listing and the TUI share it)."""
    if r["accepted"]:
        return "ACCEPTED → incumbent"
    if r["rejected_reason"]:
        return r["rejected_reason"]
    if r["full_campaign_id"]:
        # a full campaign at or below the incumbent is a loss, not a gain lost in the noise
        return "full: no gain" if (r.get("gain") or 0.0) <= 0 else "full: gain within noise"
    if r["promising"] is False:
        return "screened out"
    return "screened"
