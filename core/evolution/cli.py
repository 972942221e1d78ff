"""Headless evolution commands (DESIGN §12); ``cambrian_tui.cli`` parses, these act.

``evolve status --json`` prints ``{id, state, observations: [...], best: {spec_hash,
viability_rate, viability_interval}}`` plus more keys (keys may be added, never renamed).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.evolution import records as rec
from core.evolution.acceptance import Counts
from core.evolution.hats import load_hats
from core.evolution.operators import mutable_sections
from core.evolution.prior import home_prior
from core.evolution.settings import SIM_MODELS, EvolutionSettings
from core.evolution.state import RunState, campaign_counts
from core.home import REPO_ROOT, db_path
from core.store import Store

TERMINAL_STATES = ("completed", "stopped", "aborted", "crashed")

__all__ = [
    "create_run",
    "evolve_best_main",
    "evolve_control_main",
    "evolve_list_main",
    "evolve_resume_main",
    "evolve_start_main",
    "evolve_status_main",
    "run_status",
    "spawn_evolution",
]


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
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"evolution-{run_id}.log"
    log = open(log_path, "ab")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--home", str(home), run_id],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        cwd=str(REPO_ROOT), env=env, start_new_session=True, close_fds=True,
    )
    log.close()
    deadline = time.monotonic() + wait_s
    with Store.open(db_path(home)) as store:
        while time.monotonic() < deadline:
            lease = store.lease(run_id)
            if lease and lease["pid"] == proc.pid:
                return proc.pid
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"evolution process exited with {proc.returncode} before starting:\n{tail}")
            time.sleep(0.05)
    raise RuntimeError(f"evolution pid {proc.pid} did not take the lease within {wait_s:.0f} s")


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


# --- status ---------------------------------------------------------------------------------


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
                   "usd": s.budget_usd, "usd_spent": round(usd, 6), "tokens": tokens},
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


def current_line(cur: dict[str, Any] | None, alive: bool = True) -> str:
    """One line for the step in progress ("" when there is none); ``alive``: a process is
    running it (else it is where a paused, stopped or killed run will go on)."""
    if not cur:
        return ""
    what = {"base": "base campaign", "screen": "screening", "full": "full campaign"}[cur["phase"]]
    who = "" if cur["index"] is None else f" #{cur['index']} {cur['detail']} ({cur['model']})"
    return f"{'now' if alive else 'left off in'}: {what}{who}, {cur['done']}/{cur['planned']} generations judged"


def _traj(e: Any) -> dict[str, Any]:
    return {"spec_hash": e.spec_hash, "model": e.model, "viability_rate": e.counts.rate,
            "viability_interval": list(e.counts.interval), "observation": None if e.index < 0 else e.index}


def _line(st: dict[str, Any]) -> str:
    b = st["best"]
    rate = "-" if b["viability_rate"] is None else f"{b['viability_rate']:.0%}"
    lo, hi = b["viability_interval"]
    sim = "  SIMULATED" if st["simulated"] else ""
    bud = st["budget"]
    return (f"{st['id']}  {st['state']:<9} observations {len(st['observations']):>3}  "
            f"best {b['spec_hash'][7:19]} ({b['model']}) {rate} [{lo:.0%}, {hi:.0%}]  "
            f"gens {bud['generations_planned']}/{bud['generations']}  ${bud['usd_spent']:.4f}{sim}")


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


def print_status(st: dict[str, Any]) -> None:
    print(_line(st))
    if st.get("reason"):
        print(f"  reason: {st['reason']}")
    print(f"  process: {'pid ' + str(st['engine_pid']) if st['engine_alive'] else 'not running'}  "
          f"provider {st['provider']}  base {st['base']['spec_hash'][7:19]} "
          f"rate {'-' if st['base'].get('viability_rate') is None else format(st['base']['viability_rate'], '.0%')}")
    if st.get("current"):
        print(f"  {current_line(st['current'], st['engine_alive'])}")
    if st["settings"].get("optimizer") == "bo":
        print(f"  {prior_line(st.get('prior'))}")
    for r in st["observations"]:
        rate = "-" if r["viability_rate"] is None else f"{r['viability_rate']:.0%}"
        p = "" if r["p_better"] is None else f"P(better)={r['p_better']:.2f}"
        print(f"  #{r['index']:<3} {r['detail'][:46]:<46} {rate:>5}  {p:<15} {outcome_label(r)[:70]}")


def _open(home: Path) -> Store:
    return Store.open(db_path(home))


# --- commands -----------------------------------------------------------------------------------


def evolve_start_main(home: Path, spec_file: str, budget_generations: int, provider: str | None,
                      seed: int, wait: bool, as_json: bool, *, model: str | None = None,
                      models: list[str] | None = None, budget_usd: float | None = None,
                      screen_generations: int = 4, full_generations: int = 12, parallelism: int = 2,
                      backend: str = "docker", max_observations: int | None = None,
                      optimizer: str = "bo", learn: bool = True) -> int:
    """``cambrian evolve start --spec FILE ...``: create the run, start its detached process."""
    from core.llm.base import default_provider_name

    path = Path(spec_file)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    provider = provider or default_provider_name()
    kw: dict[str, Any] = dict(provider=provider, seed=seed, budget_generations=budget_generations,
                              budget_usd=budget_usd, screen_generations=screen_generations,
                              full_generations=full_generations, parallelism=parallelism, backend=backend,
                              max_observations=max_observations, optimizer=optimizer)
    if model:
        kw["model"] = model
    if models:
        kw["models"] = list(models)
    try:
        rid = start_run(home, text, label=path.stem, learn=learn, **kw)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not as_json:
        print(f"evolution {rid} started (detached; `cambrian evolve status {rid}`)"
              + ("  [SIMULATED: sim provider]" if provider == "sim" else ""))
    if wait:
        return _wait(home, rid, as_json)
    if as_json:
        with _open(home) as store:
            print(json.dumps(run_status(store, rid), indent=2))
    return 0


def _wait(home: Path, rid: str, as_json: bool, poll_s: float = 1.0) -> int:
    printed: set[int] = set()
    gone = 0
    with _open(home) as store:
        while True:
            st = run_status(store, rid)
            if not as_json:
                for r in st["observations"]:
                    if r["index"] not in printed:
                        printed.add(r["index"])
                        rate = "-" if r["viability_rate"] is None else f"{r['viability_rate']:.0%}"
                        what = "ACCEPTED" if r["accepted"] else (r["rejected_reason"] or "")
                        print(f"  #{r['index']}: {r['detail'][:50]:<50} {rate:>5} {what[:60]}")
            if st["state"] in TERMINAL_STATES:
                break
            gone = gone + 1 if not st["engine_alive"] else 0
            if gone >= 3:
                print(f"error: the process of {rid} is gone (state {st['state']}); "
                      f"`cambrian evolve resume {rid}` continues it", file=sys.stderr)
                return 1
            time.sleep(poll_s)
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print(_line(st))
        if st.get("reason"):
            print(f"  reason: {st['reason']}")
    return 0 if st["state"] in ("completed", "stopped") else 1


def evolve_status_main(home: Path, run_id: str, as_json: bool) -> int:
    with _open(home) as store:
        try:
            st = run_status(store, run_id)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print_status(st)
    return 0


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


def evolve_resume_main(home: Path, run_id: str) -> int:
    try:
        msg = resume_run(home, run_id)
    except (KeyError, RuntimeError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    print(f"evolution {run_id}: {msg}")
    return 0


def evolve_control_main(home: Path, run_id: str, action: str, as_json: bool = False) -> int:
    """``pause`` | ``resume`` | ``abort`` (the campaign command names) for a run."""
    if action == "resume":
        try:
            msg = resume_run(home, run_id)
        except (KeyError, RuntimeError) as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 1
    elif action in ("pause", "abort"):
        with _open(home) as store:
            try:
                row = store.campaign(run_id)
            except KeyError as exc:
                print(f"error: {exc.args[0]}", file=sys.stderr)
                return 1
            if store.lease_alive(run_id):
                store.send_command(run_id, action)
                msg = f"{action} sent to evolution pid {store.lease(run_id)['pid']}"
            elif action == "abort" and row["state"] not in ("completed", "aborted"):
                for c in rec.child_campaigns(store, run_id):
                    if c["state"] not in ("completed", "aborted"):
                        for n in store.in_progress(c["id"]):
                            store.set_outcome(n, "interrupted", "aborted while no process ran")
                        store.set_campaign_state(c["id"], "aborted", "evolution aborted")
                store.set_campaign_state(run_id, "aborted", "aborted by user (no process running)")
                msg = "aborted (no process was running)"
            else:
                print(f"error: no process runs evolution {run_id} (state {row['state']})", file=sys.stderr)
                return 1
    else:
        print(f"error: unknown action {action!r}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"id": run_id, "action": action, "result": msg}))
    else:
        print(f"evolution {run_id}: {msg}")
    return 0


def evolve_list_main(home: Path, as_json: bool) -> int:
    with _open(home) as store:
        rows = [run_status(store, c["id"]) for c in rec.evolution_runs(store)]
    if as_json:
        print(json.dumps([{k: r[k] for k in ("id", "state", "engine_pid", "spec_hash", "provider", "best")}
                          for r in rows], indent=2))
    elif not rows:
        print("no evolution runs yet: `cambrian evolve start --spec spec/echo.md --budget-generations 160`")
    else:
        for r in rows:
            print(_line(r))
    return 0


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


def evolve_best_main(home: Path, run_id: str, as_json: bool, export: str | None = None) -> int:
    """The incumbent (best variant whose gain cleared noise). ``export`` writes its spec text
    to that path (or ``DIR/{run}-best.md`` when it is a directory) and metadata JSON next to it
    (same name, ``.json``)."""
    with _open(home) as store:
        try:
            meta = best_with_metadata(store, run_id, export)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"error: cannot export to {export}: {exc}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(meta, indent=2))
    else:
        rate = "-" if meta["viability_rate"] is None else f"{meta['viability_rate']:.0%}"
        lo, hi = meta["viability_interval"]
        origin = "the base spec" if meta["observation"] is None else f"observation {meta['observation']}"
        print(f"best of {run_id}: {meta['spec_hash']} with {meta['model']}  {rate} [{lo:.0%}, {hi:.0%}] "
              f"({meta['viable']}/{meta['judged']}, from {origin})")
        if export:
            print(f"  exported to {meta['exported']['spec']} (+ {meta['exported']['metadata']})")
    return 0
