"""Confirmation campaigns: does an accepted amendment really make the spec more viable?

``start_confirmation`` runs the amended spec version with the settings of the campaign the
amendment was distilled from — same provider, model, parallelism, retries, budgets and the
same **seed schedule** (the same seed; draws are campaign-local, so draw *k* of one is
draw *k* of the other) — in a detached engine, like ``campaign start``. ``compare`` then
sets the two campaigns side by side: viability with Wilson intervals, the difference with
Newcombe's interval, Fisher's exact test on the two independent samples, and, because the
seed schedules match, an exact McNemar test on the first attempts paired by draw.

The TUI calls the same functions (``start_confirmation``, ``confirmation_report``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scipy.stats import binomtest, fisher_exact

from core.engine.stats import wilson_interval
from core.models import AmendmentStatus, CampaignSettings

EVENT = "confirmation_started"
TERMINAL = ("completed", "stopped", "aborted", "crashed")


class ConfirmRefused(RuntimeError):
    """A confirmation campaign cannot start; the message says why."""


def _original(store: Any, amendment: Any) -> dict[str, Any]:
    if not amendment.campaign_id:
        raise ConfirmRefused(f"amendment {amendment.id} was not distilled from a campaign: nothing to repeat")
    try:
        return store.campaign(amendment.campaign_id)
    except KeyError:
        raise ConfirmRefused(f"the campaign of amendment {amendment.id} ({amendment.campaign_id}) "
                             "is not in this home") from None


def confirmation_settings(store: Any, amendment_id: int, generations: int | None = None) -> dict[str, Any]:
    """The confirmation campaign's settings: the original campaign's, on the amended spec
    version, with ``generations`` (default: the original's size)."""
    a = store.amendment(amendment_id)  # KeyError for an unknown id
    if a.status not in (AmendmentStatus.ACCEPTED, AmendmentStatus.EDITED) or not a.result_spec_hash:
        raise ConfirmRefused(f"amendment {amendment_id} is {a.status.value}: accept it first "
                             "(the confirmation runs the spec version accepting creates)")
    original = _original(store, a)
    if original.get("kind") not in (None, "campaign"):
        raise ConfirmRefused(f"{original['id']} (kind {original['kind']}) has no campaign settings to run "
                             "again; start a campaign of the amended spec instead")
    data = dict(original["settings"])
    if generations is not None and generations < 1:
        raise ConfirmRefused("a confirmation campaign needs at least one generation")
    data["spec_hash"] = a.result_spec_hash
    data["generations"] = int(generations or data.get("generations") or 1)
    return CampaignSettings(**data).model_dump()


def start_confirmation(home: Path | str, amendment_id: int, generations: int | None = None, *,
                       spawn: bool = True) -> str:
    """Create the confirmation campaign of an accepted amendment and start its engine
    (detached, as ``campaign start`` does; ``spawn=False`` only creates it, for tests that
    run it in-process). Returns the campaign id. Raises :class:`ConfirmRefused`, or the
    rig's setup error when the rig cannot judge (nothing is created then)."""
    from core.engine.launch import new_campaign_id, preflight_rig, spawn_engine
    from core.home import db_path
    from core.store import Store

    home = Path(home)
    with Store.open(db_path(home)) as store:
        settings = confirmation_settings(store, amendment_id, generations)
    if spawn:
        preflight_rig(settings.get("backend") or "docker")
    with Store.open(db_path(home)) as store:
        a = store.amendment(amendment_id)
        cid = new_campaign_id()
        with store.write():
            store.create_campaign(cid, a.result_spec_hash, settings)
            store.add_event(EVENT, campaign_id=cid, data={
                "amendment": amendment_id, "original": a.campaign_id, "spec_hash": a.result_spec_hash,
                "parent_spec_hash": a.spec_hash, "feature": a.feature,
            })
    if spawn:
        spawn_engine(home, cid)
    return cid


def confirmations(store: Any, amendment_id: int) -> list[str]:
    """Confirmation campaigns of an amendment, oldest first."""
    rows = store.conn.execute(
        "SELECT campaign_id, data_json FROM events WHERE kind=? ORDER BY id", (EVENT,)).fetchall()
    import json

    return [r[0] for r in rows if json.loads(r[1] or "{}").get("amendment") == amendment_id]


def _judged(store: Any, campaign_id: str) -> list[Any]:
    return [g for g in store.generations(campaign_id)
            if g.outcome.value in ("promoted", "failed") and g.status is not None]


def _side(store: Any, campaign_id: str) -> dict[str, Any]:
    c = store.campaign(campaign_id)
    judged = _judged(store, campaign_id)
    viable = sum(1 for g in judged if g.outcome.value == "promoted")
    lo, hi = wilson_interval(viable, len(judged))
    return {"campaign": campaign_id, "state": c["state"], "spec_hash": c["spec_hash"],
            "generations": c["settings"].get("generations"), "judged": len(judged), "viable": viable,
            "rate": (viable / len(judged)) if judged else None, "interval": [round(lo, 4), round(hi, 4)]}


def newcombe_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p2 - p1 for two independent proportions (Newcombe's hybrid score
    method, from the two Wilson intervals)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1)
    l2, u2 = wilson_interval(x2, n2)
    d = p2 - p1
    return (max(-1.0, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)),
            min(1.0, d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)))


def _first_attempts(store: Any, campaign_id: str) -> dict[int, bool]:
    """draw -> viable, for the judged first attempts of a campaign."""
    rows = store.conn.execute(
        "SELECT number, draw FROM generations WHERE campaign_id=? AND attempt=0 AND draw IS NOT NULL",
        (campaign_id,)).fetchall()
    draws = {r[0]: r[1] for r in rows}
    return {draws[g.number]: g.outcome.value == "promoted" for g in _judged(store, campaign_id)
            if g.number in draws}


def compare(store: Any, before: str, after: str) -> dict[str, Any]:
    """Before/after viability of two campaigns (see the module docstring)."""
    b, a = _side(store, before), _side(store, after)
    out: dict[str, Any] = {"before": b, "after": a, "complete": b["state"] in TERMINAL and a["state"] in TERMINAL}
    if b["judged"] and a["judged"]:
        diff = a["rate"] - b["rate"]
        lo, hi = newcombe_interval(b["viable"], b["judged"], a["viable"], a["judged"])
        table = [[a["viable"], a["judged"] - a["viable"]], [b["viable"], b["judged"] - b["viable"]]]
        out["difference"] = {"value": round(diff, 4), "interval": [round(lo, 4), round(hi, 4)],
                             "method": "Newcombe hybrid score (from the Wilson intervals), 95 %"}
        out["fisher"] = {"p": float(fisher_exact(table).pvalue),
                         "p_greater": float(fisher_exact(table, alternative="greater").pvalue),
                         "test": "Fisher's exact test, two independent samples (two-sided; "
                                 "p_greater: after more viable than before)"}
    pb, pa = _first_attempts(store, before), _first_attempts(store, after)
    both = sorted(set(pb) & set(pa))
    if both:
        up = sum(1 for d in both if pa[d] and not pb[d])
        down = sum(1 for d in both if pb[d] and not pa[d])
        out["paired"] = {
            "pairs": len(both), "both_viable": sum(1 for d in both if pa[d] and pb[d]),
            "only_after": up, "only_before": down,
            "neither": sum(1 for d in both if not pa[d] and not pb[d]),
            "p": float(binomtest(up, up + down).pvalue) if up + down else 1.0,
            "test": "exact McNemar (binomial on the discordant first attempts, paired by draw), two-sided",
        }
    out["verdict"] = verdict(out)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def verdict(c: dict[str, Any]) -> str:
    b, a = c["before"], c["after"]
    if not a["judged"]:
        return f"the confirmation campaign {a['campaign']} has no judged generation yet ({a['state']})"
    if not b["judged"]:
        return f"the original campaign {b['campaign']} has no judged generation"
    d = c["difference"]
    word = "more" if d["value"] > 0 else "less" if d["value"] < 0 else "as"
    text = (f"after {a['viable']}/{a['judged']} = {_pct(a['rate'])} [{_pct(a['interval'][0])}, {_pct(a['interval'][1])}] "
            f"vs before {b['viable']}/{b['judged']} = {_pct(b['rate'])} [{_pct(b['interval'][0])}, {_pct(b['interval'][1])}]: "
            f"{word} viable by {d['value'] * 100:+.0f} points [{d['interval'][0] * 100:+.0f}, {d['interval'][1] * 100:+.0f}], "
            f"Fisher p = {c['fisher']['p']:.2g}")
    if "paired" in c:
        p = c["paired"]
        text += (f"; paired by draw ({p['pairs']} first attempts: {p['only_after']} fixed, {p['only_before']} broken) "
                 f"McNemar p = {p['p']:.2g}")
    if not c["complete"]:
        text += " (still running)"
    return text


def confirmation_report(store: Any, amendment_id: int) -> dict[str, Any] | None:
    """The comparison for the newest confirmation campaign of an amendment, or None."""
    runs = confirmations(store, amendment_id)
    if not runs:
        return None
    a = store.amendment(amendment_id)
    out = compare(store, a.campaign_id, runs[-1])
    out["amendment"] = amendment_id
    out["confirmations"] = runs
    return out
