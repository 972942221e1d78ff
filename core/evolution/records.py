"""SQL helpers for evolution runs, on top of ``core.store.Store`` (no schema change).

Layout in the existing tables:

* the run: a ``campaigns`` row, ``kind="evolution"``, settings = ``EvolutionSettings``;
* its campaigns: ``campaigns`` rows named ``{run}-base`` (the base spec's full campaign,
  ``kind="evolution-campaign"``), ``{run}-o{i:04d}-s`` (screening, ``kind="screen"``) and
  ``{run}-o{i:04d}-f`` (full, ``kind="evolution-campaign"``);
* observations: the ``observations`` table (one row per asked point, rejected ones too);
* extras that are not needed to resume (operator detail, screening counts, P(better)):
  ``evolution_variant`` and ``evolution_observation`` events on the run;
* rewrite calls: the LLM ledger with ``campaign_id = run id``.
"""

from __future__ import annotations

import json
from typing import Any

from core.evolution.kinds import CHILD_KINDS, FULL_KIND, RUN_KIND, SCREEN_KIND  # noqa: F401 (re-exported)
from core.store import Store

EV_VARIANT = "evolution_variant"
EV_OBSERVATION = "evolution_observation"


def base_campaign_id(run_id: str) -> str:
    return f"{run_id}-base"


def screen_campaign_id(run_id: str, index: int) -> str:
    return f"{run_id}-o{index:04d}-s"


def full_campaign_id(run_id: str, index: int) -> str:
    return f"{run_id}-o{index:04d}-f"


def _like_prefix(run_id: str) -> str:
    return run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"


def child_campaigns(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's campaigns (base, screening, full), oldest first, with parsed settings."""
    rows = store.conn.execute(
        "SELECT id, kind, spec_hash, settings_json, state, reason, created_at FROM campaigns "
        "WHERE id LIKE ? ESCAPE '\\' AND kind IN (?, ?) ORDER BY created_at, id",
        (_like_prefix(run_id), *CHILD_KINDS),
    ).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["settings"] = json.loads(d.pop("settings_json"))
        out.append(d)
    return out


def campaign_exists(store: Store, campaign_id: str) -> bool:
    return store.conn.execute("SELECT 1 FROM campaigns WHERE id=?", (campaign_id,)).fetchone() is not None


def planned_generations(store: Store, run_id: str) -> int:
    """Generations the run has committed to: the sum of its campaigns' sizes. Every campaign
    runs to completion (a crash resumes it), so this is the budget's deterministic measure."""
    return sum(int(c["settings"]["generations"]) for c in child_campaigns(store, run_id))


def counted_generations(store: Store, run_id: str) -> int:
    """Generations that ran (non-interrupted) in the run's campaigns."""
    row = store.conn.execute(
        "SELECT COUNT(*) FROM generations WHERE outcome <> 'interrupted' AND campaign_id IN "
        "(SELECT id FROM campaigns WHERE id LIKE ? ESCAPE '\\' AND kind IN (?, ?))",
        (_like_prefix(run_id), *CHILD_KINDS),
    ).fetchone()
    return int(row[0])


def run_spend(store: Store, run_id: str) -> tuple[int, float]:
    """(tokens, dollars): rewrite calls (ledgered on the run id) plus every run campaign."""
    tokens, usd = store.spend(run_id)
    for c in child_campaigns(store, run_id):
        t, u = store.spend(c["id"])
        tokens += t
        usd += u
    return tokens, usd


def run_unpriced_calls(store: Store, run_id: str) -> int:
    """Calls of the run (rewrites and its campaigns) at an unknown price: run_spend's dollars
    are then a lower bound."""
    return store.unpriced_calls(run_id) + sum(store.unpriced_calls(c["id"]) for c in child_campaigns(store, run_id))


def drain_commands(store: Store, target: str) -> int:
    """Consume (and drop) unconsumed commands for ``target``; returns how many."""
    return len(store.take_commands(target))


def run_events(store: Store, run_id: str, kind: str) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT id, ts, data_json FROM events WHERE campaign_id=? AND kind=? ORDER BY id",
        (run_id, kind),
    ).fetchall()
    return [{"id": r[0], "ts": r[1], "data": json.loads(r[2] or "null")} for r in rows]


def events_by_index(store: Store, run_id: str, kind: str) -> dict[int, dict[str, Any]]:
    """Latest event data of ``kind`` per observation index."""
    out: dict[int, dict[str, Any]] = {}
    for ev in run_events(store, run_id, kind):
        data = ev["data"] or {}
        if isinstance(data.get("index"), int):
            out[data["index"]] = data
    return out


def evolution_runs(store: Store) -> list[dict[str, Any]]:
    return store.campaigns(kind=RUN_KIND)
