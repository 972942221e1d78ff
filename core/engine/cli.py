"""Headless campaign commands (DESIGN §12); `cambrian_tui.cli` parses, these act."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from core.engine.summary import campaign_summary
from core.home import db_path
from core.models import CampaignSettings
from core.store import Store

TERMINAL_STATES = ("completed", "stopped", "aborted", "crashed")


def campaign_status(store: Store, campaign_id: str) -> dict[str, Any]:
    c = store.campaign(campaign_id)
    lease = store.lease(campaign_id)
    alive = store.lease_alive(campaign_id)
    s = campaign_summary(store, campaign_id)
    return {
        "id": c["id"],
        "state": c["state"],
        "reason": c.get("reason"),
        "engine_pid": lease["pid"] if lease and alive else None,
        "engine_alive": alive,
        "spec_hash": c["spec_hash"],
        "provider": c["settings"]["provider"],
        "simulated": c["settings"]["provider"] == "sim",
        "settings": c["settings"],
        "generations": [
            {"generation": g.number, "parent": g.parent, "outcome": g.outcome.value, "status": g.status,
             "failure_stage": g.failure_stage, "attempt": g.attempt, "reason": g.reason}
            for g in store.generations(campaign_id)
        ],
        "summary": {k: s[k] for k in ("viability_rate", "viability_interval", "generations", "viable",
                                      "tokens", "tokens_recorded", "cost_usd", "failure_stages", "judged",
                                      "outcomes", "tokens_per_viable", "cost_per_viable", "trend",
                                      "unpriced_calls")},
        "imported": c["kind"] == "import",
    }


def _tokens(st: dict[str, Any]) -> str:
    """Tokens spent here (the LLM ledger) and, for imported history, what the original
    recorded; the latter is labelled so that no call seems to have been made here."""
    s = st["summary"]
    if not s.get("tokens_recorded"):
        return f"tokens {s['tokens']}  ${s['cost_usd']:.4f}"
    spent = f" + {s['tokens']} spent here ${s['cost_usd']:.4f}" if s["tokens"] else ""
    return f"tokens {s['tokens_recorded']} recorded by the original{spent}"


def _line(st: dict[str, Any]) -> str:
    s = st["summary"]
    rate = "-" if s["viability_rate"] is None else f"{s['viability_rate']:.0%}"
    lo, hi = s["viability_interval"]
    sim = " SIMULATED" if st["simulated"] else ""
    imported = " IMPORTED" if st.get("imported") else ""
    unknown = f" + unknown ({s['unpriced_calls']} calls without a price)" if s.get("unpriced_calls") else ""
    return (f"{st['id']}  {st['state']:<9} gens {s['generations']:>3}  viable {s['viable']:>3}  "
            f"rate {rate} [{lo:.0%}, {hi:.0%}]  {_tokens(st)}{unknown}{sim}{imported}")


def print_status(st: dict[str, Any]) -> None:
    print(_line(st))
    if st.get("reason"):
        print(f"  reason: {st['reason']}")
    if st.get("imported"):
        cfg = st["settings"]
        print(f"  imported from {cfg.get('source')}: original campaign {cfg.get('original_campaign') or '(main line)'}, "
              f"model {cfg.get('model') or '?'}, spec {st['spec_hash'][:19]}"
              + (f"; the original counted {cfg['recorded_generations']} generations, "
                 f"{cfg.get('recorded_viable', '?')} viable" if "recorded_generations" in cfg else ""))
    else:
        where = st["settings"].get("base_url")
        print(f"  engine: {'pid ' + str(st['engine_pid']) if st['engine_alive'] else 'not running'}  "
              f"provider {st['provider']}{' at ' + where if where else ''}  model {st['settings'].get('model')}  "
              f"spec {st['spec_hash'][:19]}")
    for g in st["generations"]:
        parent = "-" if g["parent"] is None else g["parent"]
        print(f"  gen {g['generation']:>5}  parent {parent!s:>5}  try {g['attempt']}  {g['outcome']:<11} "
              f"{(g['failure_stage'] or ''):<9} {(g['reason'] or '')[:70]}")


def start_main(home: Path, spec_file: str, *, n: int, p: int, provider: str | None, model: str | None,
               seed: int, budget_usd: float | None, budget_tokens: int | None, budget_wall_s: float | None,
               max_retries: int, backend: str, wait: bool, as_json: bool, cassette: str | None = None,
               base_url: str | None = None, api_key_env: str | None = None,
               context_window: int | None = None, continuation: str | None = None,
               max_tokens: int | None = None, max_continuations: int | None = None) -> int:
    from core.engine.launch import start_detached
    from core.llm.base import default_provider_name

    path = Path(spec_file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    provider = provider or default_provider_name()
    if model is None and provider == "openai":
        model = _server_model(provider, base_url, api_key_env)
        if model is None:
            return 2
    settings = dict(spec_hash="sha256:" + "0" * 64, generations=n, parallelism=p, provider=provider,
                    model=model or default_model(provider), seed=seed, budget_usd=budget_usd,
                    budget_tokens=budget_tokens, budget_wall_s=budget_wall_s, max_retries=max_retries,
                    backend=backend, cassette=cassette, base_url=base_url, api_key_env=api_key_env,
                    context_window=context_window, continuation=continuation)
    if max_tokens is not None:
        settings["max_tokens"] = max_tokens
    if max_continuations is not None:
        settings["max_continuations"] = max_continuations
    try:
        CampaignSettings(**settings)
        cid = start_detached(home, settings, text, label=path.stem)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not as_json:
        print(f"campaign {cid} started (engine detached; `cambrian campaign status {cid}`)"
              + ("  [SIMULATED: sim provider]" if provider == "sim" else ""))
    if wait:
        return wait_main(home, cid, as_json)
    if as_json:
        with Store.open(db_path(home)) as store:
            print(json.dumps(campaign_status(store, cid), indent=2))
    return 0


def default_model(provider: str) -> str:
    return {"sim": "sim-1", "anthropic": "claude-sonnet-4-5", "replay": "claude-sonnet-4-5"}.get(provider, "sim-1")


def _server_model(provider: str, base_url: str | None, api_key_env: str | None) -> str | None:
    """The model of a server that serves exactly one (llama.cpp does); else say what to give."""
    from core.llm.endpoints import check_connection_sync

    rep = check_connection_sync(provider, base_url, api_key_env=api_key_env)
    if rep.ok and rep.model:
        return rep.model
    if rep.ok:
        print(f"error: --model is required: the server offers {', '.join(rep.models[:20]) or 'no models'}",
              file=sys.stderr)
    else:
        print(f"error: --model is required and the server could not be asked: {rep.error}", file=sys.stderr)
    return None


def wait_main(home: Path, cid: str, as_json: bool, poll_s: float = 1.0) -> int:
    """Follow a campaign to its end, printing each generation as it finishes."""
    printed: set[int] = set()
    gone = 0
    with Store.open(db_path(home)) as store:
        while True:
            st = campaign_status(store, cid)
            if not as_json:
                for g in st["generations"]:
                    if g["outcome"] not in ("in_progress", "tested") and g["generation"] not in printed:
                        printed.add(g["generation"])
                        print(f"  gen {g['generation']:>4}: {g['outcome']:<11} {(g['reason'] or '')[:80]}")
            if st["state"] in TERMINAL_STATES:
                break
            gone = gone + 1 if not st["engine_alive"] else 0
            if gone >= 3:
                print(f"error: the engine of {cid} is gone (state {st['state']}); "
                      f"`cambrian campaign resume {cid}` continues it", file=sys.stderr)
                return 1
            time.sleep(poll_s)
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print(_line(st))
        if st.get("reason"):
            print(f"  reason: {st['reason']}")
    return 0 if st["state"] in ("completed", "stopped") else 1


def status_main(home: Path, cid: str, as_json: bool) -> int:
    with Store.open(db_path(home)) as store:
        try:
            st = campaign_status(store, cid)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print_status(st)
    return 0


def list_main(home: Path, as_json: bool) -> int:
    with Store.open(db_path(home)) as store:
        rows = [campaign_status(store, c["id"]) for c in store.campaigns()
                if c["kind"] in ("campaign", "import")]
    if as_json:
        print(json.dumps([{k: r[k] for k in ("id", "state", "engine_pid", "spec_hash", "provider", "summary",
                                             "imported")}
                          for r in rows], indent=2))
    elif not rows:
        print("no campaigns yet: `cambrian campaign start --spec spec/echo.md -n 4 -p 2`")
    else:
        for r in rows:
            print(_line(r))
    return 0


def control_main(home: Path, cid: str, action: str, as_json: bool) -> int:
    from core.engine.launch import resume

    with Store.open(db_path(home)) as store:
        try:
            c = store.campaign(cid)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 1
        alive = store.lease_alive(cid)
        if action in ("pause", "abort"):
            if not alive:
                if action == "abort" and c["state"] not in ("completed", "aborted"):
                    for n in store.in_progress(cid):
                        store.set_outcome(n, "interrupted", "aborted while no engine ran")
                    store.set_campaign_state(cid, "aborted", "aborted by user (no engine running)")
                    msg = "aborted (no engine was running)"
                else:
                    print(f"error: no engine runs campaign {cid} (state {c['state']})", file=sys.stderr)
                    return 1
            else:
                store.send_command(cid, action)
                msg = f"{action} sent to engine pid {store.lease(cid)['pid']}"
    if action == "resume":
        try:
            msg = resume(home, cid)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps({"id": cid, "action": action, "result": msg}))
    else:
        print(f"campaign {cid}: {msg}")
    return 0


# --- history: import, reverify -------------------------------------------------------------


def _gen_list(numbers: list[int]) -> str:
    """``3-7, 9``: runs of consecutive numbers collapsed."""
    out: list[str] = []
    for n in sorted(set(numbers)):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = out[-1].split("-")[0] + f"-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def import_main(home: Path, folder: str, as_json: bool) -> int:
    from core.engine.importer import ImportErrorReport, import_tree

    with Store.open(db_path(home)) as store:
        try:
            res = import_tree(store, folder)
        except ImportErrorReport as exc:
            print(f"error: {exc} (nothing was imported)", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(res, indent=2))
        return 0
    already = res["already_imported"]
    earlier = [a for a in already if not a["same_import"]]
    earlier_gens = sorted({a["generation"] for a in earlier})
    if not res["generations"]:
        print(f"nothing new in {res['root']}: " + (
            f"everything in it is already imported (gen {_gen_list(earlier_gens)}); nothing was added"
            if earlier else "no generations found"))
    else:
        n_new = len(res["new_campaigns"])
        print(f"imported {res['generations']} generations from {res['root']} into {len(res['campaigns'])} "
              f"campaign(s) ({n_new} new)")
        for c in res["per_campaign"]:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(c["outcomes"].items()))
            print(f"  {c['id']}{' (new)' if c['new'] else ''}: {len(c['generations'])} generations, "
                  f"gen {_gen_list(c['generations'])}; {outcomes}"
                  + (f"; {c['record_only']} record only" if c["record_only"] else "")
                  + f"; tokens {c['tokens']} recorded")
        for m in res["mapping"]:
            orig = f"gen-{m['original_generation']}" if m["original_generation"] is not None else "?"
            print(f"    {m['source']:<52} -> gen {m['generation']:<6} {orig:<8} "
                  f"{m['recorded'] or 'no verdict'}{'' if m['artifact'] else '  (record only)'}")
        if earlier:
            print(f"already imported: {len(earlier_gens)} generation(s) (gen {_gen_list(earlier_gens)}); "
                  "nothing added for them")
    dup = [a for a in already if a["same_import"]]
    for a in dup:
        print(f"  {a['source']}: the same artifact as gen {a['generation']} (imported once)")
    if res["record_only"]:
        print("record only (no artifact in the tree: kept as history, no rig run possible): gen "
              + _gen_list([m["generation"] for m in res["record_only"]]))
    for note in res["notes"]:
        print(f"  note: {note}")
    for s in res["skipped"]:
        print(f"  skipped: {s}")
    return 0


def _verdict(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    tests = "" if d["tests_run"] is None else f" {d['tests_passed']}/{d['tests_run']}"
    return f"{d['status']}/{d['failure_stage']}{tests}"


def reverify_main(home: Path, args: list[str], *, backend: str, profile: str, as_json: bool,
                  rig_fn=None) -> int:
    from core.engine.reverify import parse_numbers, reverify

    numbers, bad = parse_numbers(args)
    invalid = [{"generation": a, "error": f"{a!r} is not a generation number", "reason": "not a number"}
               for a in bad]
    if not as_json:
        print(f"{'gen':>6}  {'original':<28} {'recorded':<26} {'now (' + profile + ')':<26} reason")

    def show(r: dict[str, Any]) -> None:
        if as_json:
            return
        o = r.get("original")
        orig = f"{o['campaign'] or 'main'} gen-{o['generation']}" if o else "-"
        if "error" in r:
            print(f"{r['generation']!s:>6}  {orig:<28} error: {r['error']}")
        else:
            print(f"{r['generation']:>6}  {orig:<28} {_verdict(r['recorded']):<26} {_verdict(r['now']):<26} "
                  f"{r['reason']}", flush=True)

    for r in invalid:  # at once: judging the valid ones may take minutes
        show(r)
    with Store.open(db_path(home)) as store:
        rows = reverify(store, numbers, backend=backend, rig_fn=rig_fn, profile=profile, on_row=show)
    rows += invalid
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        judged = [r for r in rows if "error" not in r]
        same = sum(1 for r in judged if r["same"])
        unrecorded = sum(1 for r in judged if r["recorded"] is None)
        errors = len(rows) - len(judged)
        print(f"{len(judged)} judged under profile {profile}: {same} same, {len(judged) - same - unrecorded} differ"
              + (f", {unrecorded} without a recorded verdict" if unrecorded else "")
              + (f"; {errors} not judged (see above)" if errors else ""))
    return 0 if rows and all(r.get("same") for r in rows) else 1
