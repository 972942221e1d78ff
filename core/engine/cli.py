"""Printing for the headless campaign commands (DESIGN §12): ``cambrian_tui.cli`` parses,
``core.app`` acts, this prints. No store access here (tests/test_layers.py checks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.app import Cambrian
from core.app.commands import CommandRefused, ControlCampaign, SpecRef, StartCampaign



def _line(st: dict[str, Any]) -> str:
    s = st["summary"]
    rate = "-" if s["viability_rate"] is None else f"{s['viability_rate']:.0%}"
    lo, hi = s["viability_interval"]
    sim = " SIMULATED" if st["simulated"] else ""
    return (f"{st['id']}  {st['state']:<9} done {st['progress']:>7}  viable {s['viable']:>3}  "
            f"rate {rate} [{lo:.0%}, {hi:.0%}]  tokens {s['tokens']}  ${s['cost_usd']:.4f}{sim}")


def print_status(st: dict[str, Any]) -> None:
    print(_line(st))
    if st.get("reason"):
        print(f"  reason: {st['reason']}")
    print(f"  engine: {'pid ' + str(st['engine_pid']) if st['engine_alive'] else 'not running'}  "
          f"provider {st['provider']}  spec {st['spec_hash'][:19]}")
    for g in st["generations"]:
        parent = "-" if g["parent"] is None else g["parent"]
        print(f"  gen {g['generation']:>5}  parent {parent!s:>5}  try {g['attempt']}  {g['outcome']:<11} "
              f"{(g['failure_stage'] or ''):<9} {(g['reason'] or '')[:70]}")


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
        rows = [app.reads.campaign_status(c.id) for c in app.reads.campaigns() if c.kind == "campaign"]
    if as_json:
        print(json.dumps([{k: r[k] for k in ("id", "state", "engine_pid", "spec_hash", "provider", "summary")}
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
