"""`cambrian doctor`: what is installed and reachable, and how to fix each gap."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _docker_checks() -> list[Check]:
    out: list[Check] = []
    try:
        import docker  # noqa: F401
    except ImportError:
        return [Check("docker SDK", False, "python package 'docker' missing", "run ./cambrian again to reinstall")]
    try:
        from rig.image import docker_client, image_present, image_tag

        client = docker_client()
        version = client.version().get("Version", "?")
        out.append(Check("docker engine", True, f"reachable, server {version}"))
        tag = image_tag()
        present = image_present(client)
        out.append(Check("rig image", present, f"{tag} {'present' if present else 'missing'}",
                         "" if present else "cambrian rig build-image  (needs root + debootstrap)"))
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        fix = ("start it: sudo dockerd &   (install: sudo apt-get install docker.io)"
               if shutil.which("dockerd") else "install it: sudo apt-get install docker.io && sudo dockerd &")
        out.append(Check("docker engine", False, f"not reachable: {str(exc).splitlines()[0][:120]}", fix))
        out.append(Check("rig image", False, "unknown (no engine)", "start the engine first", required=False))
    return out


def gather(home: Path) -> list[Check]:
    checks = [
        Check("python", sys.version_info >= (3, 11), f"{platform.python_version()} at {sys.executable}",
              "install Python 3.11+"),
        Check("home", os.access(home, os.W_OK), f"{home} (writable)" if os.access(home, os.W_OK) else str(home),
              "set CAMBRIAN_HOME or --home to a writable folder"),
    ]
    checks += _docker_checks()
    bwrap = shutil.which("bwrap")
    checks.append(Check("bubblewrap", bool(bwrap), bwrap or "not installed",
                        "" if bwrap else "sudo apt-get install bubblewrap  (fallback rig backend)", required=False))
    deboot = shutil.which("debootstrap")
    checks.append(Check("debootstrap", bool(deboot), deboot or "not installed",
                        "" if deboot else "sudo apt-get install debootstrap  (needed to build the rig image)",
                        required=False))
    key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    checks.append(Check("anthropic key", key,
                        "ANTHROPIC_API_KEY set: provider 'anthropic' available" if key
                        else "not set: the offline 'sim' provider is used (SIMULATED)",
                        "" if key else "export ANTHROPIC_API_KEY=... to use the real model", required=False))
    return checks


def run_doctor(home: Path, as_json: bool = False) -> int:
    checks = gather(home)
    failed = [c for c in checks if c.required and not c.ok]
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
        return 1 if failed else 0
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark}] {c.name:<14} {c.detail}")
        if not c.ok and c.fix:
            print(f"       fix: {c.fix}")
    print("all required checks passed" if not failed else f"{len(failed)} required check(s) failed")
    return 1 if failed else 0
