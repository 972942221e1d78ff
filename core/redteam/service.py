"""The red team's call, its score, and the threshold rule (see the package doc).

The call goes through whatever provider the caller gives (the engine's is budgeted and
ledgered, generation = the tested one). An answer with no readable probe gets one repair; a
second unreadable answer, or a provider failure, makes the red team *unavailable* for that
generation — recorded with the reason, never a change to the Layer-1 verdict. A budget
refusal (``BudgetExceeded``) propagates: the caller stops the campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.examiner.parse import ExamineAnswerError, parse_probes, rig_probe
from core.redteam.prompt import MAX_PROBES, PROBES_FENCE, build_redteam_repair, build_redteam_request

RULE = "redteam_threshold"


@dataclass
class Attack:
    probes: list[dict[str, Any]] = field(default_factory=list)  # contract dict + relies_on
    dropped: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unavailable: str | None = None  # why there is no attack to run


async def propose(spec_text: str, files: dict[str, bytes], provider: Any, model: str, *,
                  generation: int, campaign_id: str | None = None, max_tokens: int = 8000) -> Attack:
    """The red team's probes against ``files`` (an artifact of the stored ``spec_text``; only
    its writer-visible part reaches the request, and quotes are checked against that part)."""
    from core.engine.budget import BudgetExceeded
    from core.llm.base import ProviderError
    from core.spec import parse_spec

    visible = parse_spec(spec_text).visible()
    req = build_redteam_request(visible, files, generation=generation, model=model, max_tokens=max_tokens)
    req.metadata["campaign_id"] = campaign_id
    out = Attack()
    text, problem = "", ""
    for attempt in (0, 1):
        try:
            resp = await provider.complete(req if attempt == 0 else build_redteam_repair(req, text, problem))
        except BudgetExceeded:
            raise
        except ProviderError as exc:
            out.unavailable = f"the redteam call failed: {exc}"[:500]
            return out
        out.calls += 1
        text = resp.text
        out.tokens += (resp.input_tokens + resp.output_tokens + resp.cache_creation_input_tokens
                       + resp.cache_read_input_tokens)
        out.cost_usd = round(out.cost_usd + resp.cost_usd, 6)
        try:
            parsed = parse_probes(text, visible.text, max_probes=MAX_PROBES, fence=PROBES_FENCE)
        except ExamineAnswerError as exc:
            problem = str(exc)
            continue
        out.probes, out.dropped = parsed.probes, parsed.dropped
        return out
    out.unavailable = f"unreadable answer after one repair: {problem}"[:500]
    return out


def rig_layer(attack: Attack) -> list[dict[str, Any]]:
    """The probes as the rig runs them (the quotes stay with the record)."""
    return [rig_probe(p) for p in attack.probes]


def score_block(attack: Attack, report: dict[str, Any] | None, rig_ms: int | None) -> dict[str, Any]:
    """The report's ``redteam`` block. ``report``: the wire report of the red-team rig run
    (None when no run was made). Unavailable when there was no attack, or when that run never
    reached its probes (the artifact did not start again: no verdict on the probes)."""
    block: dict[str, Any] = {"proposed": len(attack.probes), "confirmed": None, "score": None,
                             "probes": [], "dropped": attack.dropped, "tokens": attack.tokens,
                             "cost_usd": attack.cost_usd, "calls": attack.calls, "rig_ms": rig_ms,
                             "unavailable": attack.unavailable is not None, "why": attack.unavailable}
    if attack.unavailable is not None:
        return block
    results = {r.get("name"): r for r in
               (((report or {}).get("checks") or {}).get("health") or {}).get("redteam") or []}
    if not results:
        stage = (report or {}).get("failure_stage")
        block.update(unavailable=True, why=("the red-team run did not reach its probes"
                                            + (f" (it failed at {stage})" if stage and stage != "none" else "")))
        return block
    confirmed = 0
    for p in attack.probes:
        r = results.get(p["name"]) or {"passed": False, "status": None, "error": "not run"}
        confirmed += not r.get("passed")
        block["probes"].append({
            "name": p["name"], "method": p.get("method", "GET"), "path": p["path"],
            "body": p.get("body"), "expected": p["expect"],
            "actual": {"status": r.get("status"), "body_excerpt": r.get("body_excerpt"),
                       "error": r.get("error")},
            "passed": bool(r.get("passed")), "relies_on": p.get("relies_on")})
    block["confirmed"] = confirmed
    block["score"] = round(1 - confirmed / len(attack.probes), 4)
    return block


def apply_threshold(report: dict[str, Any], block: dict[str, Any], threshold: float | None) -> str | None:
    """Make a viable ``report`` non-viable when its red-team score is below ``threshold``
    (rule ``redteam_threshold``); returns the reason, or None when the verdict stands. The
    diagnostics count the confirmed probes and never name them (a retry's writer reads them)."""
    score = block.get("score")
    if threshold is None or score is None or score >= threshold or report.get("status") != "viable":
        return None
    summary = (f"red team: {block['confirmed']} of {block['proposed']} probe(s) confirmed a violation "
               f"(score {score:.2f} < threshold {threshold:.2f}; withheld from the writer) [rule: {RULE}]")
    report["status"] = "non-viable"
    report["failure_stage"] = "health"
    report["diagnostics"] = {
        "stage": "health", "summary": summary, "exit_code": None,
        "failures": [{"test": f"redteam:#{i}", "error": "a hidden probe failed"}
                     for i, p in enumerate(block["probes"], 1) if not p["passed"]],
        "stdout_tail": "", "stderr_tail": ""}
    report["stricter_rules"] = [*(report.get("stricter_rules") or []), RULE]
    report["lenient_rules"] = []
    return summary


def sampled(seed: int, draw: int | None, rate: float) -> bool:
    """Whether this draw of a campaign is in its red-team sample (deterministic: a resumed or
    replayed campaign samples the same generations; independent of reproduction's sample)."""
    from core.engine.runner import sampled as _sampled

    return _sampled(seed, draw, rate, kind="redteam")


def campaign_redteam(store: Any, campaign_id: str) -> dict[str, Any] | None:
    """The red team over one campaign's reports: how many generations it tested (scored), how
    many it could not, the mean and spread of their scores, the confirmed violations, the
    generations its threshold turned non-viable, and what it cost (calls' tokens, extra rig
    time). None when the campaign has it off and no report carries a block."""
    row = store.campaign(campaign_id)
    if row is None:
        return None
    settings = row["settings"]
    blocks = [(n, json_block) for n, json_block in store.conn.execute(
        "SELECT number, json_extract(report_json, '$.redteam') FROM generations "
        "WHERE campaign_id=? AND json_extract(report_json, '$.redteam') IS NOT NULL ORDER BY number",
        (campaign_id,)).fetchall()]
    mode = settings.get("redteam", "off")
    if mode == "off" and not blocks:
        return None
    import json
    from statistics import mean, median

    parsed = [(n, json.loads(b)) for n, b in blocks]
    scored = [b for _, b in parsed if b.get("score") is not None]
    scores = sorted(b["score"] for b in scored)
    rig_ms = [b["rig_ms"] for _, b in parsed if b.get("rig_ms") is not None]
    gated = store.conn.execute(
        "SELECT COUNT(*) FROM generations WHERE campaign_id=? AND report_json LIKE ?",
        (campaign_id, f'%"{RULE}"%')).fetchone()[0]
    return {
        "mode": mode, "rate": settings.get("redteam_rate") if mode == "sample" else None,
        "threshold": settings.get("redteam_threshold"),
        "tested": len(scored), "unavailable": len(parsed) - len(scored),
        "proposed": sum(b["proposed"] for b in scored),
        "confirmed": sum(b["confirmed"] for b in scored),
        "mean_score": round(mean(scores), 4) if scores else None,
        "scores": {"min": scores[0], "median": round(median(scores), 4), "max": scores[-1]} if scores else None,
        "failed_threshold": gated,
        "tokens": sum(b.get("tokens") or 0 for _, b in parsed),
        "cost_usd": round(sum(b.get("cost_usd") or 0.0 for _, b in parsed), 6),
        "rig_ms_median": round(median(rig_ms)) if rig_ms else None,
    }
