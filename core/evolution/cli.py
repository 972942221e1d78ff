"""Printing for the headless evolution commands (DESIGN §12): ``cambrian_tui.cli`` parses,
``core.app`` acts, this prints. No store access here (tests/test_layers.py checks).

``evolve status --json`` prints ``{id, state, observations: [...], best: {spec_hash,
viability_rate, viability_interval}}`` plus more keys (keys may be added, never renamed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.app import Cambrian
from core.app.commands import CommandRefused, ControlEvolution, ExportBest, StartEvolution
from core.app.fmt import money
from core.evolution.describe import current_line, outcome_label, prior_line



def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _line(st: dict[str, Any]) -> str:
    b = st["best"]
    rate = "-" if b["viability_rate"] is None else f"{b['viability_rate']:.0%}"
    lo, hi = b["viability_interval"]
    sim = "  SIMULATED" if st["simulated"] else ""
    bud = st["budget"]
    return (f"{st['id']}  {st['state']:<9} observations {len(st['observations']):>3}  "
            f"best {b['spec_hash'][7:19]} ({b['model']}) {rate} [{lo:.0%}, {hi:.0%}]  "
            f"gens {bud['generations_planned']}/{bud['generations']}  "
            f"{money(bud['usd_spent'], bud.get('unpriced_calls', 0), 4)}{sim}")


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



def evolve_start_main(home: Path, command: StartEvolution, *, wait: bool, as_json: bool) -> int:
    """``cambrian evolve start --spec FILE ...``: create the run, start its detached process."""
    with Cambrian(home) as app:
        try:
            started = app.run(command)
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
        rid = started.run_id
        if not as_json:
            print(f"evolution {rid} started (detached; `cambrian evolve status {rid}`)"
                  + ("  [SIMULATED: sim provider]" if started.simulated else ""))
        if wait:
            return _wait(app, rid, as_json)
        if as_json:
            print(json.dumps(app.reads.evolution_status(rid), indent=2))
    return 0


def _wait(app: Cambrian, rid: str, as_json: bool, poll_s: float = 1.0) -> int:
    printed: set[int] = set()

    def show(st: dict[str, Any]) -> None:
        if as_json:
            return
        for r in st["observations"]:
            if r["index"] not in printed:
                printed.add(r["index"])
                rate = "-" if r["viability_rate"] is None else f"{r['viability_rate']:.0%}"
                what = "ACCEPTED" if r["accepted"] else (r["rejected_reason"] or "")
                print(f"  #{r['index']}: {r['detail'][:50]:<50} {rate:>5} {what[:60]}")

    res = app.wait_run(rid, on_update=show, poll_s=poll_s)
    st = res.status
    if res.gone:
        _err(f"the process of {rid} is gone (state {st['state']}); `cambrian evolve resume {rid}` continues it")
        return 1
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print(_line(st))
        if st.get("reason"):
            print(f"  reason: {st['reason']}")
    return 0 if st["state"] in ("completed", "stopped") else 1


def evolve_status_main(home: Path, run_id: str, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            st = app.reads.evolution_status(run_id)
        except KeyError as exc:
            _err(exc.args[0])
            return 1
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print_status(st)
    return 0


def evolve_control_main(home: Path, run_id: str, action: str, as_json: bool = False) -> int:
    """``pause`` | ``resume`` | ``abort`` (the campaign command names) for a run."""
    if action not in ("pause", "resume", "abort"):
        _err(f"unknown action {action!r} (pause, resume, abort)")
        return 2
    with Cambrian(home) as app:
        try:
            done = app.run(ControlEvolution(run_id, action))  # type: ignore[arg-type]
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
    if as_json:
        print(json.dumps({"id": run_id, "action": action, "result": done.result}))
    else:
        print(f"evolution {run_id}: {done.result}")
    return 0


def evolve_resume_main(home: Path, run_id: str) -> int:
    return evolve_control_main(home, run_id, "resume")


def evolve_list_main(home: Path, as_json: bool) -> int:
    with Cambrian(home) as app:
        rows = [app.reads.evolution_status(r.id) for r in app.reads.evolution_runs() if r.error is None]
    if as_json:
        print(json.dumps([{k: r[k] for k in ("id", "state", "engine_pid", "spec_hash", "provider", "best")}
                          for r in rows], indent=2))
    elif not rows:
        print("no evolution runs yet: `cambrian evolve start --spec spec/echo.md --budget-generations 160`")
    else:
        for r in rows:
            print(_line(r))
    return 0


def evolve_best_main(home: Path, run_id: str, as_json: bool, export: str | None = None) -> int:
    """The incumbent (best variant whose gain cleared noise). ``export`` writes its spec text
    to that path (or ``DIR/{run}-best.md`` when it is a directory) and metadata JSON next to it
    (same name, ``.json``)."""
    with Cambrian(home) as app:
        try:
            if export:
                meta = app.run(ExportBest(run_id, export)).meta
            else:
                meta = app.reads.evolution_best(run_id)
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
        except KeyError as exc:
            _err(exc.args[0])
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


__all__ = ["evolve_best_main", "evolve_control_main", "evolve_list_main", "evolve_resume_main",
           "evolve_start_main", "evolve_status_main", "print_status"]
