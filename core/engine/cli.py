"""Printing for the headless campaign commands (DESIGN §12): ``cambrian_tui.cli`` parses,
``core.app`` acts, this prints. No store access here (tests/test_layers.py checks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.app import Cambrian
from core.app.commands import (CommandRefused, ControlCampaign, ImportArtifacts, Reverify, SpecRef,
                               StartCampaign)



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
    return (f"{st['id']}  {st['state']:<9} done {st['progress']:>7}  viable {s['viable']:>3}  "
            f"rate {rate} [{lo:.0%}, {hi:.0%}]  {_tokens(st)}{unknown}{sim}{imported}")


def sealed_line(s: dict[str, Any]) -> str:
    """Visible vs sealed vectors and the generalisation gap, in one line."""
    vis = "-" if s["visible_pass_rate"] is None else f"{s['visible_pass_rate']:.0%}"
    gap = "-" if s["gap"] is None else f"{s['gap'] * 100:+.0f} pp"
    return (f"vectors: visible {vis} ({s['visible'][0]}/{s['visible'][1]})  sealed "
            f"{s['sealed_pass_rate']:.0%} ({s['sealed'][0]}/{s['sealed'][1]})  generalisation gap {gap}  "
            f"over {s['generations']} generation(s) that ran them")


def examiner_lines(e: dict[str, Any]) -> list[str]:
    """The examiner layer (Layer 2): its set, pass rate, viability if it gated, suspects."""
    if e["state"] != "ready":
        why = e.get("reason") or ("not made yet" if e["state"] is None else e["state"])
        return [f"examiner ({e['mode']}, {e['model']}): unavailable — {why}"]
    rate = "-" if e["pass_rate"] is None else f"{e['pass_rate']:.0%}"
    gated = "-" if e["viability_if_gated"] is None else f"{e['viability_if_gated']:.0%}"
    out = [f"examiner ({e['mode']}, {e['model']}): {e['probes']} probes ({e['dismissed']} dismissed, "
           f"{e['dropped']} dropped)  pass rate {rate} ({e['passed']}/{e['total']})  viable if gated "
           f"{gated} ({e['viable_all_passed']}/{e['judged']} judged, viable now {e['viable']}; "
           f"{e['generations']} ran the probes)"]
    for p in e["suspects"]:
        out.append(f"  suspect probe {p['name']}: {p['method']} {p['path']} expects {p['expect_status']}, "
                   f"failed {p['failed']}/{p['ran']} artifacts — `cambrian examiner dismiss "
                   f"{e.get('spec_hash', 'SPEC')[:19]} {p['name']} --reason ...`")
    return out


def redteam_line(r: dict[str, Any]) -> str:
    """The red team (Layer 3): tested generations, score spread, confirmed violations, cost."""
    how = r["mode"] + (f" {r['rate']:.0%}" if r.get("rate") else "")
    if r.get("threshold") is not None:
        how += f", threshold {r['threshold']:.2f}"
    if not r["tested"]:
        return f"red team ({how}): nothing tested yet ({r['unavailable']} unavailable)"
    s = r["scores"]
    return (f"red team ({how}): {r['tested']} tested ({r['unavailable']} unavailable)  mean score "
            f"{r['mean_score']:.2f} (min {s['min']:.2f}, median {s['median']:.2f}, max {s['max']:.2f})  "
            f"confirmed {r['confirmed']}/{r['proposed']} probes  failed the threshold {r['failed_threshold']}  "
            f"{r['tokens']} tokens, rig median {r['rig_ms_median']} ms per test")


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
    fert = st.get("summary", {}).get("fertility")
    if fert:
        print(f"  {fertility_line(fert)}")
    sealed = st.get("summary", {}).get("sealed")
    if sealed:
        print(f"  {sealed_line(sealed)}")
    examiner = st.get("summary", {}).get("examiner")
    if examiner:
        for line in examiner_lines(dict(examiner, spec_hash=st["spec_hash"])):
            print(f"  {line}")
    redteam = st.get("summary", {}).get("redteam")
    if redteam:
        print(f"  {redteam_line(redteam)}")
    for h in st.get("hosts") or []:
        print(f"  rig host {h['name']}: slots {h.get('slots')}, "
              + (f"DRAINED: {h['drained']}" if h.get("drained") else "ready"))
    for g in st["generations"]:
        parent = "-" if g["parent"] is None else g["parent"]
        print(f"  gen {g['generation']:>5}  parent {parent!s:>5}  try {g['attempt']}  {g['outcome']:<11} "
              f"{(g['failure_stage'] or ''):<9} {(g['reason'] or '')[:70]}")


def fertility_line(f: dict[str, Any]) -> str:
    rate = "" if f.get("rate") is None else (
        f" — fertility {f['rate']:.0%} (95% interval {f['interval'][0]:.0%}–{f['interval'][1]:.0%})")
    return (f"reproduction: bred {f['bred']}, fertile {f['fertile']}, infertile {f['infertile']}, "
            f"errors {f['errors']}{rate}")


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def start_main(home: Path, command: StartCampaign, *, wait: bool, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            started = app.run(command)
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
        cid = started.campaign_id
        if not as_json:
            print(f"campaign {cid} started (engine detached; `cambrian campaign status {cid}`)"
                  + ("  [SIMULATED: sim provider]" if started.simulated else ""))
        if wait:
            return _wait(app, cid, as_json)
        if as_json:
            print(json.dumps(app.reads.campaign_status(cid), indent=2))
    return 0


def spec_ref(path: str) -> SpecRef:
    return SpecRef(path=path)


def _wait(app: Cambrian, cid: str, as_json: bool, poll_s: float = 1.0) -> int:
    """Follow a campaign to its end, printing each generation as it finishes."""
    printed: set[int] = set()

    def show(st: dict[str, Any]) -> None:
        if as_json:
            return
        for g in st["generations"]:
            if g["outcome"] not in ("in_progress", "tested") and g["generation"] not in printed:
                printed.add(g["generation"])
                print(f"  gen {g['generation']:>4}: {g['outcome']:<11} {(g['reason'] or '')[:80]}")

    res = app.wait_campaign(cid, on_update=show, poll_s=poll_s)
    st = res.status
    if res.gone:
        _err(f"the engine of {cid} is gone (state {st['state']}); `cambrian campaign resume {cid}` continues it")
        return 1
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print(_line(st))
        if st.get("reason"):
            print(f"  reason: {st['reason']}")
        if st["summary"].get("fertility"):
            print(f"  {fertility_line(st['summary']['fertility'])}")
    return 0 if st["state"] in ("completed", "stopped") else 1


def wait_main(home: Path, cid: str, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            app.reads.campaign(cid)
        except KeyError as exc:
            _err(exc.args[0])
            return 1
        return _wait(app, cid, as_json)


def status_main(home: Path, cid: str, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            st = app.reads.campaign_status(cid)
        except KeyError as exc:
            _err(exc.args[0])
            return 1
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print_status(st)
    return 0


def list_main(home: Path, as_json: bool) -> int:
    with Cambrian(home) as app:
        rows = [app.reads.campaign_status(c.id) for c in app.reads.campaigns()
                if c.kind in ("campaign", "import")]
    if as_json:
        print(json.dumps([{k: r[k] for k in ("id", "state", "engine_pid", "spec_hash", "provider", "imported", "summary")}
                          for r in rows], indent=2))
    elif not rows:
        print("no campaigns yet: `cambrian campaign start --spec spec/echo.md -n 4 -p 2`")
    else:
        for r in rows:
            print(_line(r))
    return 0


def control_main(home: Path, cid: str, action: str, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            done = app.run(ControlCampaign(cid, action))  # type: ignore[arg-type]
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
    if as_json:
        print(json.dumps({"id": cid, "action": action, "result": done.result}))
    else:
        print(f"campaign {cid}: {done.result}")
    return 0


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
    with Cambrian(home) as app:
        try:
            res = app.run(ImportArtifacts(folder))
        except CommandRefused as exc:
            _err(f"{exc.reason} (nothing was imported)")
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


def parse_numbers(args: list[str]) -> tuple[list[int], list[str]]:
    """(valid integers in order, without repeats), (arguments that are not integers)."""
    nums, bad = [], []
    for a in args:
        try:
            n = int(a)
        except ValueError:
            bad.append(a)
            continue
        if n not in nums:
            nums.append(n)
    return nums, bad


def _verdict(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    tests = "" if d["tests_run"] is None else f" {d['tests_passed']}/{d['tests_run']}"
    return f"{d['status']}/{d['failure_stage']}{tests}"


def reverify_main(home: Path, args: list[str], *, backend: str, profile: str, as_json: bool,
                  rig_fn=None) -> int:
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
    with Cambrian(home) as app:
        try:
            rows = app.run(Reverify(tuple(numbers), backend=backend, profile=profile, on_row=show,
                                    rig_fn=rig_fn))
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
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
