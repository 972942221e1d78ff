"""`cambrian hosts add|list|check|remove`: parse, call core.app.hosts, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.app.hosts import HostError, PreflightFailed, add_host, check_rig_host, list_hosts, remove_host


def _err(msg: str) -> None:
    print(f"cambrian: {msg}", file=sys.stderr)


def _line(r: dict) -> str:
    facts = (f"docker {r['docker']}, kernel {r['kernel']}, cgroup v{r['cgroup']}"
             if r.get("docker") else "not checked")
    cal = f", calibration {r['calibration_s']}s" if r.get("calibration_s") is not None else ""
    state = f"DRAINED: {r['drained']}" if r["drained"] else "ready"
    return f"{r['name']:<16} {r['url']:<32} slots {r['slots']:<3} {state} ({facts}{cal})"


def hosts_add_main(home: Path, url: str, name: str | None, slots: int | None, identity: str | None,
                   known_hosts: str | None, docker_socket: str | None, as_json: bool) -> int:
    try:
        row = add_host(home, url, name=name, slots=slots, identity=identity,
                       known_hosts=known_hosts, docker_socket=docker_socket)
    except HostError as exc:
        _err(str(exc))
        return 2
    if as_json:
        print(json.dumps(row, indent=2))
    else:
        print(f"added rig host {row['name']} ({row['url']})"
              + (f"; run `cambrian hosts check {row['name']}` before the engine uses it" if row["drained"] else ""))
    return 0


def hosts_list_main(home: Path, as_json: bool) -> int:
    try:
        rows = list_hosts(home)
    except HostError as exc:
        _err(str(exc))
        return 2
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(_line(r))
    return 0


def hosts_check_main(home: Path, names: list[str], calibrate: bool, as_json: bool) -> int:
    try:
        targets = names or [r["name"] for r in list_hosts(home)]
    except HostError as exc:
        _err(str(exc))
        return 2
    out, rc = [], 0
    for name in targets:
        try:
            row = check_rig_host(home, name, calibrate=calibrate,
                                 progress=lambda m: print(f"[hosts] {m}", file=sys.stderr, flush=True))
            out.append(dict(row, ok=True))
            if not as_json:
                print(f"{name}: ok  " + _line(row))
        except (HostError, PreflightFailed) as exc:
            rc = 1
            out.append({"name": name, "ok": False, "error": str(exc)})
            if not as_json:
                print(f"{name}: FAILED: {exc}")
    if as_json:
        print(json.dumps(out, indent=2))
    return rc


def hosts_remove_main(home: Path, name: str) -> int:
    try:
        remove_host(home, name)
    except HostError as exc:
        _err(str(exc))
        return 2
    print(f"removed rig host {name}")
    return 0
