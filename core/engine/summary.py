"""Campaign summaries (DESIGN §9.3 per campaign): rate with interval, stages, cost."""

from __future__ import annotations

from collections import Counter
from typing import Any

from core.engine.stats import wilson_interval
from core.examiner.service import campaign_examiner
from core.redteam.service import campaign_redteam


def campaign_summary(store, campaign_id: str) -> dict[str, Any]:
    gens = store.generations(campaign_id)
    judged = [g for g in gens if g.outcome.value in ("promoted", "failed") and g.status is not None]
    viable = sum(1 for g in judged if g.outcome.value == "promoted")
    # failure_stage "generate" marks a generation that never reached the rig
    stages = Counter(g.failure_stage or "unknown" for g in gens if g.outcome.value in ("failed", "timeout"))
    tokens, cost = store.spend(campaign_id)
    # imported history: the usage the original recorded (no call was made here, so it is
    # not in the ledger, the cost or the budgets; reported apart, and in tokens_per_viable)
    recorded = store.imported_tokens(campaign_id)
    trend, seen, ok = [], 0, 0
    for g in sorted(judged, key=lambda g: g.number):
        seen += 1
        ok += g.outcome.value == "promoted"
        trend.append(round(ok / seen, 4))
    lo, hi = wilson_interval(viable, len(judged))
    outcomes = Counter(g.outcome.value for g in gens)
    examiner = campaign_examiner(store, campaign_id)
    return {
        "fertility": fertility(store, campaign_id),
        "examiner": examiner,
        "examiner_pass_rate": examiner["pass_rate"] if examiner else None,
        "redteam": campaign_redteam(store, campaign_id),
        "sealed": generalisation(store.sealed_rows(campaign_id)),
        "viability_rate": (viable / len(judged)) if judged else None,
        "viability_interval": [round(lo, 4), round(hi, 4)],
        "generations": len(gens),
        "judged": len(judged),
        "viable": viable,
        "failed": outcomes.get("failed", 0),
        "outcomes": dict(outcomes),
        "failure_stages": {k: v for k, v in stages.items() if v},
        "tokens": tokens,
        "tokens_recorded": recorded,
        "cost_usd": round(cost, 6),
        # calls at an unknown price: cost_usd leaves them out and must be shown as "+ unknown"
        "unpriced_calls": store.unpriced_calls(campaign_id),
        "tokens_per_viable": ((tokens + recorded) / viable) if viable else None,
        "cost_per_viable": (cost / viable) if viable else None,
        "trend": trend,
    }


def fertility(store, campaign_id: str) -> dict[str, Any] | None:
    """Of the viable offspring asked to breed: how many bred a viable offspring of their own,
    with an interval; the viable-but-infertile caught; what reproduction cost. None when the
    campaign asked none."""
    tests = store.reproductions(campaign_id)
    if not tests:
        return None
    decided = [t for t in tests if t["status"] in ("fertile", "infertile")]
    fertile = sum(1 for t in decided if t["status"] == "fertile")
    lo, hi = wilson_interval(fertile, len(decided))
    stages = Counter((t["stage"] or "?") for t in decided if t["status"] == "infertile")
    rig_ms = [t["rig_ms"] for t in tests if t.get("rig_ms") is not None]
    return {
        "bred": len(store.bred_generations(campaign_id=campaign_id)),
        "tested": len(decided),
        "fertile": fertile,
        "infertile": len(decided) - fertile,
        "errors": len(tests) - len(decided),
        "rate": (fertile / len(decided)) if decided else None,
        "interval": [round(lo, 4), round(hi, 4)],
        "infertile_stages": dict(stages),
        "tokens": sum(t["tokens"] for t in tests),
        "cost_usd": round(sum(t["cost_usd"] for t in tests), 6),
        "rig_ms_median": sorted(rig_ms)[len(rig_ms) // 2] if rig_ms else None,
    }


def generalisation(rows: list[tuple]) -> dict[str, Any] | None:
    """Visible vs sealed vectors over the generations whose report ran both: pooled pass
    rates (passed / run, over every vector of every such generation) and the
    **generalisation gap** = visible rate − sealed rate (positive: the code meets what the
    writer saw better than what it did not). None when no report ran a sealed vector.

    ``rows``: (vector_pass_rate, vectors_total, sealed_pass_rate, sealed_total) per
    generation (``Store.sealed_rows``)."""
    gens = vis_ok = vis_n = sealed_ok = sealed_n = all_sealed = 0
    for v_rate, v_total, s_rate, s_total in rows:
        if not s_total:
            continue
        gens += 1
        passed = round((s_rate or 0.0) * s_total)
        sealed_ok += passed
        sealed_n += int(s_total)
        all_sealed += passed == s_total
        if v_total:
            vis_ok += round((v_rate or 0.0) * v_total)
            vis_n += int(v_total)
    if not gens:
        return None
    visible = vis_ok / vis_n if vis_n else None
    sealed = sealed_ok / sealed_n
    return {
        "generations": gens,  # reports that ran the sealed vectors
        "visible_pass_rate": round(visible, 4) if visible is not None else None,
        "sealed_pass_rate": round(sealed, 4),
        "gap": round(visible - sealed, 4) if visible is not None else None,
        "visible": [vis_ok, vis_n],
        "sealed": [sealed_ok, sealed_n],
        "all_sealed_passed": all_sealed,  # generations that passed every sealed vector
    }
