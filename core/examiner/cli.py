"""Printing for ``cambrian examiner show|dismiss`` (``cambrian_tui.cli`` parses, ``core.app``
acts, this prints; no store access here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.app import Cambrian
from core.app.commands import CommandRefused, DismissProbe


def show_main(home: Path, spec: str, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            out = app.reads.examiner_probes(spec)
        except KeyError as exc:
            print(f"cambrian: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    if not out["sets"]:
        print(f"{out['spec_hash']}: no examiner probes yet (a campaign with --examiner score|gate makes them)")
    for s in out["sets"]:
        print(f"{out['spec_hash']}  examiner {s['model']}: {s['state']}"
              + (f" — {s['reason']}" if s["reason"] else "")
              + f"  ({len(s['probes'])} probes, {len(s['dropped'])} dropped, {s['tokens']} tokens, "
                f"call(s) {s['call_ids']} in campaign {s['campaign_id']})")
        for p in s["probes"]:
            flag = "dismissed" if p["dismissed"] else ("SUSPECT" if p["suspect"] else "")
            print(f"  {p['name']:<32} {p['method']:<6} {p['path']:<28} -> {p['expect_status']}  "
                  f"failed {p['failed']}/{p['ran']}  {flag}")
            print(f"      relies on: {p['relies_on']}")
            if p["dismissed"]:
                print(f"      dismissed: {p['dismissal']['reason']}")
        for d in s["dropped"]:
            print(f"  dropped #{d['index']} {d['name'] or '?'}: {d['reason']}")
    return 0


def dismiss_main(home: Path, spec: str, probe: str, reason: str, model: str | None, as_json: bool) -> int:
    with Cambrian(home) as app:
        try:
            done = app.run(DismissProbe(spec=spec, probe=probe, reason=reason, model=model))
        except CommandRefused as exc:
            print(f"cambrian: {exc.reason}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps({"spec_hash": done.spec_hash, "probe": done.probe, "dismissals": list(done.dismissals)},
                         indent=2))
        return 0
    for d in done.dismissals:
        ev = d["evidence"]
        state = "was already dismissed" if d["already"] else "dismissed"
        print(f"{done.spec_hash} {d['model']} {done.probe}: {state} (failed {ev['failed']}/{ev['ran']} "
              "artifacts); it no longer counts for later generations")
    return 0
