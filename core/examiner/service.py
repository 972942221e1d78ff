"""The examiner at work: probes made once per (spec version, examiner model), reused; the
rig's ``examiner`` layer; suspect probes.

**Made once.** :func:`ensure_probes` returns the stored set, or asks the examiner (one
``examine`` call, ledgered and budgeted by the provider it is given). Engines of one home
(the TUI's and a CLI campaign, say) take a file lock beside the database first, so a
second one waits for the first one's set instead of paying for its own call. An answer with no
readable probe gets one repair call; if that fails too the set is stored as *unavailable*
with the reason — the campaign runs on without the layer. A provider failure (network, a
refusal) is not stored: :class:`ExaminerUnavailable` says why, and the next engine run asks
again. A budget refusal propagates like any other call's.

**Suspect.** A probe that failed on at least ``SUSPECT_FAIL_SHARE`` of the at least
``SUSPECT_MIN_RUNS`` artifacts of its spec that ran it (every campaign counted) is more
likely the examiner's mistake than every writer's. A person may dismiss it
(:func:`dismiss_probe`): it is no longer sent to the rig, so it neither gates nor scores
later generations; the reports that ran it keep its results, and the dismissal keeps the
evidence seen at the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
from collections import defaultdict
from typing import Any, AsyncIterator

from core.examiner import records
from core.examiner.parse import ExamineAnswerError, parse_probes, rig_probe
from core.examiner.prompt import build_examine_repair, build_examine_request
from core.examiner.records import ProbeSet
from core.models import utcnow
from core.store import Store

SUSPECT_MIN_RUNS = 5
SUSPECT_FAIL_SHARE = 0.9


class ExaminerUnavailable(RuntimeError):
    """The examiner could not be asked now (the provider failed); nothing was stored."""


class DismissError(ValueError):
    """A dismissal that cannot be recorded (unknown spec, model or probe; no reason)."""


async def ensure_probes(store: Store, spec_text: str, spec_hash: str, provider: Any, model: str, *,
                        campaign_id: str | None = None, max_tokens: int = 8000) -> ProbeSet:
    """The probe set of (spec_hash, model): the stored one, else made now (see the module doc).
    ``spec_text`` is the stored spec; only its writer-visible part reaches the request."""
    found = records.load(store, spec_hash, model)
    if found is not None:
        return found
    async with _examine_lock(store, spec_hash, model):
        found = records.load(store, spec_hash, model)  # another engine's, made while we waited
        if found is not None:
            return found
        return await _make_probes(store, spec_text, spec_hash, provider, model,
                                  campaign_id=campaign_id, max_tokens=max_tokens)


@contextlib.asynccontextmanager
async def _examine_lock(store: Store, spec_hash: str, model: str) -> AsyncIterator[None]:
    """One examine call per (spec, model) across the engine processes of a home: an flock
    on a file beside the database (released by the OS if its holder dies), polled so that
    the event loop keeps running while another engine's call is in flight."""
    key = hashlib.sha256(f"{spec_hash}\0{model}".encode()).hexdigest()[:16]
    with open(store.path.parent / f".examine-{key}.lock", "a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def _make_probes(store: Store, spec_text: str, spec_hash: str, provider: Any, model: str, *,
                       campaign_id: str | None, max_tokens: int) -> ProbeSet:
    from core.engine.budget import BudgetExceeded
    from core.llm.base import ProviderError
    from core.spec import parse_spec

    visible = parse_spec(spec_text).visible()
    req = build_examine_request(visible, model=model, max_tokens=max_tokens)
    req.metadata["campaign_id"] = campaign_id
    last_id = _last_call_id(store)
    tokens, cost = 0, 0.0
    problem = ""
    parsed = None
    for attempt in (0, 1):
        try:
            resp = await provider.complete(req if attempt == 0 else build_examine_repair(req, text, problem))
        except BudgetExceeded:
            raise
        except ProviderError as exc:
            raise ExaminerUnavailable(f"the examine call failed: {exc}") from exc
        text = resp.text
        tokens += (resp.input_tokens + resp.output_tokens + resp.cache_creation_input_tokens
                   + resp.cache_read_input_tokens)
        cost += resp.cost_usd
        try:
            parsed = parse_probes(text, visible.text)
            break
        except ExamineAnswerError as exc:
            problem = str(exc)
    calls = [c.id for c in store.llm_calls(campaign_id=campaign_id)
             if c.purpose == "examine" and c.id is not None and c.id > last_id] if campaign_id else []
    ps = ProbeSet(spec_hash=spec_hash, model=model, state="ready" if parsed else "unavailable",
                  probes=parsed.probes if parsed else [], dropped=parsed.dropped if parsed else [],
                  reason=None if parsed else f"unreadable answer after one repair: {problem}",
                  call_ids=calls, tokens=tokens, cost_usd=round(cost, 6), campaign_id=campaign_id,
                  created_at=utcnow())
    return records.save(store, ps)


def _last_call_id(store: Store) -> int:
    row = store.conn.execute("SELECT COALESCE(MAX(id), 0) FROM llm_calls").fetchone()
    return int(row[0])


def rig_layer(ps: ProbeSet | None) -> list[dict[str, Any]]:
    """The probes the rig runs as the examiner layer: the undismissed ones, as contracts."""
    if ps is None or ps.state != "ready":
        return []
    return [rig_probe(p) for p in ps.active]


def evidence(store: Store, spec_hash: str, model: str) -> dict[str, dict[str, int]]:
    """Per probe name: how many artifacts of the spec ran it and how many failed it."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"ran": 0, "failed": 0})
    for _gen, name, passed in records.probe_results(store, spec_hash, model):
        out[name]["ran"] += 1
        out[name]["failed"] += not passed
    return dict(out)


def is_suspect(ran: int, failed: int) -> bool:
    return ran >= SUSPECT_MIN_RUNS and failed >= SUSPECT_FAIL_SHARE * ran


def probe_table(store: Store, ps: ProbeSet) -> list[dict[str, Any]]:
    """Every probe of the set with its evidence, suspect and dismissed flags."""
    ev = evidence(store, ps.spec_hash, ps.model)
    rows = []
    for p in ps.probes:
        e = ev.get(p["name"], {"ran": 0, "failed": 0})
        dismissed = p["name"] in ps.dismissed
        rows.append({"name": p["name"], "method": p.get("method", "GET"), "path": p["path"],
                     "expect_status": p["expect"]["status"], "relies_on": p.get("relies_on"),
                     "ran": e["ran"], "failed": e["failed"],
                     "suspect": not dismissed and is_suspect(e["ran"], e["failed"]),
                     "dismissed": dismissed,
                     "dismissal": ps.dismissed.get(p["name"])})
    return rows


def suspects(store: Store, ps: ProbeSet | None) -> list[dict[str, Any]]:
    """The set's undismissed suspect probes (see the module doc)."""
    if ps is None or ps.state != "ready":
        return []
    return [r for r in probe_table(store, ps) if r["suspect"]]


def dismiss_probe(store: Store, spec_hash: str, probe: str, reason: str,
                  model: str | None = None) -> list[dict[str, Any]]:
    """Dismiss ``probe`` of the spec's probe set(s) (of ``model``, or of every examiner model
    whose set holds that name). Returns one {model, probe, evidence} per dismissal."""
    if not reason.strip():
        raise DismissError("a dismissal needs a reason (--reason)")
    try:
        full = store.resolve_spec(spec_hash)
    except Exception as exc:  # noqa: BLE001 - the store says why (unknown, ambiguous)
        raise DismissError(str(exc.args[0] if exc.args else exc)) from exc
    sets = [ps for ps in records.sets_of(store, full) if model is None or ps.model == model]
    if not sets:
        what = f" by examiner model {model!r}" if model else ""
        raise DismissError(f"no examiner probes stored for spec {spec_hash}{what}")
    hits = [ps for ps in sets if any(p["name"] == probe for p in ps.probes)]
    if not hits:
        names = sorted({p["name"] for ps in sets for p in ps.probes})
        raise DismissError(f"no probe {probe!r} in the examiner probes of {spec_hash}: {', '.join(names) or 'none'}")
    out = []
    for ps in hits:
        ev = evidence(store, ps.spec_hash, ps.model).get(probe, {"ran": 0, "failed": 0})
        records.dismiss(store, ps.spec_hash, ps.model, probe, reason.strip(), ev)
        out.append({"model": ps.model, "probe": probe, "evidence": ev,
                    "already": probe in ps.dismissed})
    return out


def campaign_examiner(store: Store, campaign_id: str) -> dict[str, Any] | None:
    """The examiner layer of one campaign: its probe set, the pooled pass rate over the
    campaign's reports that ran it, how many judged generations would stay viable were the
    examiner gating (dismissed probes not counted), and the set's suspect probes (over every
    campaign of the spec). None when the campaign has the examiner off and no report ran it."""
    row = store.campaign(campaign_id)
    if row is None:
        return None
    settings = row["settings"]
    mode = settings.get("examiner", "off")
    model = settings.get("examiner_model") or settings.get("model") or ""
    ps = records.load(store, row["spec_hash"], model)
    results = store.conn.execute(
        "SELECT g.number, g.status, json_extract(e.value, '$.name'), json_extract(e.value, '$.passed') "
        "FROM generations g, json_each(g.report_json, '$.checks.health.examiner') e "
        "WHERE g.campaign_id=? ORDER BY g.number", (campaign_id,)).fetchall()
    if mode == "off" and not results:
        return None
    dismissed = set(ps.dismissed) if ps else set()
    per_gen: dict[int, dict[str, Any]] = {}
    passed = total = 0
    for n, status, name, ok in results:
        g = per_gen.setdefault(n, {"viable": status == "viable", "failed": set(), "passed": 0, "total": 0})
        if name in dismissed:
            continue  # a person judged the probe wrong: its results stop counting (kept as evidence)
        passed += bool(ok)
        total += 1
        g["passed"] += bool(ok)
        g["total"] += 1
        if not ok:
            g["failed"].add(name)
    ran = len(per_gen)
    # every judged generation counts: one that failed before the health stage never ran a
    # probe and is non-viable either way
    judged = store.conn.execute(
        "SELECT COUNT(*) FROM generations WHERE campaign_id=? AND outcome IN ('promoted', 'failed') "
        "AND status IS NOT NULL", (campaign_id,)).fetchone()[0]
    clean = sum(1 for g in per_gen.values() if not g["failed"])
    viable = sum(1 for g in per_gen.values() if g["viable"])
    kept = sum(1 for g in per_gen.values() if g["viable"] and not g["failed"])
    return {
        "mode": mode, "model": model,
        "state": ps.state if ps else None, "reason": ps.reason if ps else None,
        "probes": len(ps.probes) if ps else 0, "dismissed": len(dismissed), "dropped": len(ps.dropped) if ps else 0,
        "generations": ran, "judged": judged, "passed": passed, "total": total,
        "pass_rate": round(passed / total, 4) if total else None,
        "all_passed": clean,  # generations failing no undismissed probe
        "viable": viable,  # of those that ran the examiner: viable by their own verdict
        "viable_all_passed": kept,
        "viability_if_gated": round(kept / judged, 4) if judged else None,
        "suspects": suspects(store, ps),
        # per generation that ran it: (number, pass rate without dismissed probes), for charts
        "series": [(n, round(g["passed"] / g["total"], 4)) for n, g in sorted(per_gen.items()) if g["total"]],
        "call": ({"ids": ps.call_ids, "tokens": ps.tokens, "cost_usd": ps.cost_usd, "campaign_id": ps.campaign_id,
                  "created_at": ps.created_at} if ps else None),
    }
