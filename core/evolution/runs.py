"""Evolution runs as things to start, resume, stop and read (no printing): the
application layer (``core.app``) calls these; ``core.evolution.cli`` only prints.

``run_status`` is the view ``cambrian evolve status --json`` prints: ``{id, state,
observations: [...], best: {spec_hash, viability_rate, viability_interval}}`` plus more keys
(keys may be added, never renamed).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.detached import spawn_detached
from core.evolution import records as rec
from core.evolution.acceptance import Counts
from core.evolution.hats import load_hats
from core.evolution.operators import mutable_sections
from core.evolution.prior import home_prior
from core.evolution.settings import SIM_MODELS, EvolutionSettings
from core.evolution.state import RunState, campaign_counts
from core.home import db_path
from core.store import Store


def _open(home: Path) -> Store:
    return Store.open(db_path(home))


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"e-{stamp}-{secrets.token_hex(2)}"


def _default_model(provider: str) -> str:
    from core.llm.base import default_model

    return default_model(provider)


def create_run(store: Store, spec_text: str, *, run_id: str | None = None, label: str = "",
               hats_dir: str | Path | None = None, learn: bool = True, **settings: Any) -> str:
    """Store the base spec and the run row (state pending); returns the run id.

    ``settings`` are :class:`EvolutionSettings` fields; sections, system-prompt section,
    hats, accepted amendments and (``learn``, BO only) the prior learned from the home's
    earlier runs are filled in (and frozen) here."""
    from core.spec import check_spec, parse_spec

    issues = check_spec(spec_text)
    if issues:
        raise ValueError("spec has problems: " + "; ".join(str(i) for i in issues[:5]))
    spec = parse_spec(spec_text)
    if settings.get("fitness") == "fertility":
        from rig.vectors import spec_reproduce

        if spec_reproduce(spec_text)[0] is None:
            raise ValueError("fitness fertility: the spec declares no `reproduce` in its front matter, "
                             "so its offspring cannot be asked to breed; use fitness viability")
        if (settings.get("backend") or "docker") != "docker":
            raise ValueError("fitness fertility: only the docker backend can serve the LLM gateway "
                             "to an offspring")
    version = store.add_spec(spec_text, label=label)
    provider = settings.get("provider") or "sim"
    settings.setdefault("model", _default_model(provider))
    if provider == "sim" and not settings.get("models"):
        settings["models"] = list(SIM_MODELS)
    settings.setdefault("sections", mutable_sections(spec_text))
    settings.setdefault("initial_design", "sweep")  # new runs; stored runs keep what they had
    settings.setdefault("objective", "log-gain")  # likewise
    settings.setdefault("system_section", spec.system_prompt_section)
    if "hats" not in settings:
        settings["hats"] = {h.name: {"description": h.description, "fragment": h.fragment}
                            for h in load_hats(hats_dir).values()}
    if "amendments" not in settings:
        settings["amendments"] = candidate_amendments(store, spec)
    if learn and settings.get("optimizer", "bo") == "bo" and "prior" not in settings:
        scale = settings.get("gain_scale", EvolutionSettings.model_fields["gain_scale"].default)
        prior = home_prior(store, provider=provider, objective=settings["objective"], gain_scale=scale,
                           model=settings["model"])
        settings["prior"] = prior.model_dump() if prior is not None else None
    s = EvolutionSettings(base_spec_hash=version.hash, **settings)
    rid = run_id or new_run_id()
    store.create_campaign(rid, version.hash, s.model_dump(), kind=rec.RUN_KIND)
    return rid


def proposal_evidence(evidence: dict | None) -> dict:
    """The part of a distiller proposal's evidence an evolution run records with it."""
    ev = evidence or {}
    keys = ("feature", "direction", "comparison", "groups", "p", "q", "odds_ratio")
    return {k: ev[k] for k in keys if k in ev}


def candidate_amendments(store: Store, spec: Any) -> list[dict]:
    """What the ``amend`` operator may insert into ``spec``: every accepted (or edited)
    amendment, then every distiller proposal not yet reviewed (pending), each once by text
    and only where its section exists in the spec. Proposals carry their evidence."""
    names = {s.name.casefold() for s in spec.sections}
    out: list[dict] = []
    seen: set[str] = set()
    accepted = sorted((a for status in ("accepted", "edited") for a in store.amendments(status=status)),
                      key=lambda a: a.id or 0)
    pending = sorted(store.amendments(status="pending"), key=lambda a: a.id or 0)
    for a in accepted + pending:
        key = " ".join(a.text.split()).casefold()
        if a.section.casefold() not in names or key in seen:
            continue
        seen.add(key)
        entry = {"id": a.id, "section": a.section, "text": a.text, "status": a.status.value, "feature": a.feature}
        if a.status.value == "pending":
            entry["evidence"] = {**proposal_evidence(a.evidence), "campaign": a.campaign_id}
        out.append(entry)
    return out


def spawn_evolution(home: Path, run_id: str, wait_s: float = 30.0, *,
                    module: str = "core.evolution.main") -> int:
    """Launch ``python -m core.evolution.main`` in its own session; return its pid once it
    holds the run's lease. (``module``: tests substitute an entry with the same CLI.)"""
    return spawn_detached(home, module, run_id, log_name=f"evolution-{run_id}.log", what="evolution process",
                          wait_s=wait_s).pid


def start_run(home: Path, spec_text: str, *, label: str = "", learn: bool = True, **settings: Any) -> str:
    """Create the run and start its detached process (the CLI's and the TUI's "start").
    If the process cannot start, the run row stays ``pending``: `evolve resume` retries it.
    Refused (RigSetupError) when the rig cannot judge: nothing is created."""
    from core.engine.launch import preflight_rig

    preflight_rig(settings.get("backend") or "docker")
    with _open(home) as store:
        rid = create_run(store, spec_text, label=label, learn=learn, **settings)
    spawn_evolution(home, rid)
    return rid


def _rate(c: Counts | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"viable": c.viable, "judged": c.judged, "viability_rate": c.rate,
            "viability_interval": list(c.interval)}


def run_status(store: Store, run_id: str) -> dict[str, Any]:
    """Everything the CLI and the TUI show about one run (a pure read)."""
    row = store.campaign(run_id)
    if row["kind"] != rec.RUN_KIND:
        raise KeyError(f"{run_id!r} is a {row['kind']}, not an evolution run")
    s = EvolutionSettings(**row["settings"])
    lease = store.lease(run_id)
    alive = store.lease_alive(run_id)
    base_id = rec.base_campaign_id(run_id)
    base_counts = campaign_counts(store, base_id) if rec.campaign_exists(store, base_id) else Counts(0, 0)
    observations = store.observations(run_id)
    state = RunState.fold(store, s, base_counts, observations)
    extras = rec.events_by_index(store, run_id, rec.EV_OBSERVATION)
    variants = rec.events_by_index(store, run_id, rec.EV_VARIANT)
    inc_at: dict[int, Any] = {}
    current = state.incumbents[0][1]
    it = iter(state.incumbents[1:])
    nxt = next(it, None)
    rows = []
    for (params, y), o in zip(state.history, observations):
        x = extras.get(o.index, {})
        before = current
        if nxt is not None and nxt[0] == o.index:
            current = nxt[1]
            nxt = next(it, None)
        inc_at[o.index] = current
        screen = x.get("screen")
        full = x.get("full")
        rows.append({
            "index": o.index,
            "params": o.params,
            "operator": o.params.get("operator"),
            "detail": x.get("detail") or variants.get(o.index, {}).get("detail", ""),
            "model": x.get("model") or state.variant_model(o.params),
            "spec_hash": o.spec_hash,
            "parent_spec_hash": o.parent_spec_hash,
            "parent_model": x.get("parent_model", before.model),
            "campaign_id": o.campaign_id,
            "screen_campaign_id": x.get("screen_campaign_id"),
            "full_campaign_id": x.get("full_campaign_id"),
            "viability_rate": o.viability_rate,
            "viability_interval": list(o.interval) if o.interval else None,
            "screen": {"viable": screen[0], "judged": screen[1]} if screen else None,
            "full": {"viable": full[0], "judged": full[1]} if full else None,
            "incumbent_rate": before.counts.rate,
            "gain": None if o.rejected_reason else round((o.viability_rate or 0.0) - (before.counts.rate or 0.0), 6),
            "objective": round(y, 6),
            "promising": x.get("promising"),
            "p_better": x.get("p_better"),
            "generations": o.generations,
            "accepted": o.accepted,
            "rejected_reason": o.rejected_reason,
            "created_at": o.created_at,
        })
    inc = state.incumbent
    best = {"spec_hash": inc.spec_hash, "viability_rate": inc.counts.rate,
            "viability_interval": list(inc.counts.interval), "model": inc.model,
            "observation": None if inc.index < 0 else inc.index,
            "campaign_id": base_id if inc.index < 0 else rec.full_campaign_id(run_id, inc.index),
            "viable": inc.counts.viable, "judged": inc.counts.judged}
    trajectory = [{"after": -1, **_traj(state.incumbents[0][1])}]
    for o in observations:
        trajectory.append({"after": o.index, **_traj(inc_at[o.index])})
    ops: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = ops.setdefault(r["operator"], {"tried": 0, "evaluated": 0, "rejected": 0, "noop": 0,
                                           "promising": 0, "accepted": 0, "gains": []})
        d["tried"] += 1
        if r["rejected_reason"]:
            d["rejected"] += 1
            d["noop"] += r["rejected_reason"].startswith("no-op: ")
        else:
            d["evaluated"] += 1
            d["promising"] += bool(r["promising"])
            d["accepted"] += bool(r["accepted"])
            d["gains"].append(r["gain"])
    for d in ops.values():
        g = d.pop("gains")
        d["mean_gain"] = round(sum(g) / len(g), 4) if g else None
    tokens, usd = rec.run_spend(store, run_id)
    current = (None if row["state"] in ("completed", "aborted")
               else _current_step(store, run_id, len(observations), variants, s))
    return {
        "id": run_id,
        "state": row["state"],
        "reason": row.get("reason"),
        "created_at": row.get("created_at"),
        "engine_pid": lease["pid"] if lease and alive else None,
        "engine_alive": alive,
        "spec_hash": row["spec_hash"],
        "provider": s.provider,
        "simulated": s.provider == "sim",
        "settings": {k: v for k, v in s.model_dump().items() if k not in ("hats", "amendments", "prior")},
        "prior": None if s.prior is None else {
            "runs": s.prior.runs, "observations": s.prior.observations,
            "by_operator": {k: round(v, 4) for k, v in s.prior.by_operator().items()},
            "deferred": s.prior.deferred_names()},
        "hats": sorted(s.hats),
        "amendments": len(s.amendments),
        "proposals": sum(1 for a in s.amendments if a.status == "pending"),
        "budget": {"generations": s.budget_generations,
                   "generations_planned": rec.planned_generations(store, run_id),
                   "generations_run": rec.counted_generations(store, run_id),
                   "usd": s.budget_usd, "usd_spent": round(usd, 6), "tokens": tokens,
                   "unpriced_calls": rec.run_unpriced_calls(store, run_id)},
        "base": {"spec_hash": s.base_spec_hash, "campaign_id": base_id, "model": s.model,
                 **(_rate(base_counts) or {})},
        "observations": rows,
        "best": best,
        "trajectory": trajectory,
        "operators": ops,
        "current": current,
    }


def _current_step(store: Store, run_id: str, n_obs: int, variants: dict[int, Any],
                  s: EvolutionSettings) -> dict[str, Any] | None:
    """The step whose observation is not written yet: the base campaign, or variant ``n_obs``
    in its screening or full campaign (``done`` = judged generations so far). None between
    steps (the next variant is being made)."""
    def campaign(phase: str, cid: str, planned: int, **extra: Any) -> dict[str, Any]:
        done = 0
        if rec.campaign_exists(store, cid):  # else not created yet: nothing judged, default size
            done = campaign_counts(store, cid).judged
            planned = int(store.campaign(cid)["settings"]["generations"])
        return {"phase": phase, "campaign_id": cid, "done": done, "planned": planned, **extra}

    base_id = rec.base_campaign_id(run_id)
    if n_obs == 0 and (not rec.campaign_exists(store, base_id)
                       or store.campaign(base_id)["state"] != "completed"):
        return campaign("base", base_id, s.full_generations, index=None, detail="the base spec", model=s.model)
    v = variants.get(n_obs)
    if v is None:
        return None
    full_id = rec.full_campaign_id(run_id, n_obs)
    extra = {"index": n_obs, "detail": v.get("detail", ""), "model": v.get("model")}
    if rec.campaign_exists(store, full_id):
        return campaign("full", full_id, s.full_generations, **extra)
    return campaign("screen", rec.screen_campaign_id(run_id, n_obs), s.screen_generations, **extra)


def _traj(e: Any) -> dict[str, Any]:
    return {"spec_hash": e.spec_hash, "model": e.model, "viability_rate": e.counts.rate,
            "viability_interval": list(e.counts.interval), "observation": None if e.index < 0 else e.index}


def resume_run(home: Path, run_id: str) -> str:
    """Resume a paused run, or restart the process of a crashed/stopped one."""
    with _open(home) as store:
        row = store.campaign(run_id)
        if row["kind"] != rec.RUN_KIND:
            raise RuntimeError(f"{run_id} is a {row['kind']}, not an evolution run")
        if store.lease_alive(run_id):
            store.send_command(run_id, "resume")
            return "resumed"
        if row["state"] in ("completed", "aborted"):
            raise RuntimeError(f"evolution {run_id} is {row['state']}; start a new one instead")
        if row["state"] == "paused":
            store.set_campaign_state(run_id, "running", "resumed by user")
    spawn_evolution(home, run_id)
    return "restarted"


def control_run(home: Path, run_id: str, action: str) -> str:
    """``pause`` | ``resume`` | ``abort`` a run; returns what happened (RuntimeError: refused).
    A run no process holds can still be aborted (its unfinished campaigns with it)."""
    if action == "resume":
        return resume_run(home, run_id)
    if action not in ("pause", "abort"):
        raise ValueError(f"unknown action {action!r}")
    with _open(home) as store:
        row = store.campaign(run_id)
        if row["kind"] != rec.RUN_KIND:
            raise RuntimeError(f"{run_id} is a {row['kind']}, not an evolution run")
        if store.lease_alive(run_id):
            store.send_command(run_id, action)
            return f"{action} sent to evolution pid {store.lease(run_id)['pid']}"
        if action == "abort" and row["state"] not in ("completed", "aborted"):
            with store.write():
                for c in rec.child_campaigns(store, run_id):
                    if c["state"] not in ("completed", "aborted"):
                        for n in store.in_progress(c["id"]):
                            store.set_outcome(n, "interrupted", "aborted while no process ran")
                        store.set_campaign_state(c["id"], "aborted", "evolution aborted")
                store.set_campaign_state(run_id, "aborted", "aborted by user (no process running)")
            return "aborted (no process was running)"
        raise RuntimeError(f"no process runs evolution {run_id} (state {row['state']})")


def best_with_metadata(store: Store, run_id: str, export: str | Path | None = None) -> dict[str, Any]:
    """The incumbent with the run's metadata; with ``export``, also writes its spec text to
    that path (``DIR/{run}-best.md`` for a directory) and the metadata as JSON next to it
    (same name, ``.json``), and adds ``exported: {spec, metadata}``."""
    st = run_status(store, run_id)
    best = st["best"]
    meta = {"run": run_id, "state": st["state"], **best, "base_spec_hash": st["base"]["spec_hash"],
            "base_viability_rate": st["base"].get("viability_rate"), "provider": st["provider"],
            "simulated": st["simulated"], "observations": len(st["observations"])}
    if export:
        text = store.spec_text(best["spec_hash"])
        target = Path(export)
        if target.is_dir():
            target = target / f"{run_id}-best.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        meta_path = target.with_suffix(".json") if target.suffix != ".json" else target.with_name(target.name + ".meta.json")
        target.write_bytes(text.encode("utf-8"))
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        meta["exported"] = {"spec": str(target), "metadata": str(meta_path)}
    return meta
