"""Make a venv hold exactly what a uv/pip-compile lock names (run with the venv's python).

    venv_sync.py --check LOCK          exit 1 and list the differences
    venv_sync.py --remove-extras LOCK  uninstall what the lock does not name

Entries whose environment marker does not apply here are skipped; the project itself
(installed editable from the checkout) is never an extra.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

from packaging.markers import Marker
from packaging.utils import canonicalize_name

PROJECT = "cambrian"
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = _ENTRY.match(line.rstrip("\n"))
            if not m:
                continue
            name, version, marker = m.groups()
            if marker and not Marker(marker).evaluate():
                continue
            out[canonicalize_name(name)] = version
    return out


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version
            for d in importlib.metadata.distributions() if d.metadata["Name"]}


def differences(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    out = []
    for name, version in sorted(lock.items()):
        if name not in have:
            out.append(f"missing: {name}=={version}")
        elif have[name] != version:
            out.append(f"wrong version: {name} {have[name]} (lock: {version})")
    for name in sorted(set(have) - set(lock) - {PROJECT}):
        out.append(f"not in the lock: {name}=={have[name]}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("--check", "--remove-extras"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path = argv
    lock = locked(path)
    if mode == "--remove-extras":
        extras = sorted(set(installed()) - set(lock) - {PROJECT})
        if extras:
            print("removing packages the lock does not name: " + ", ".join(extras))
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *extras],
                           check=True)
    diff = differences(lock, installed())
    for line in diff:
        print(line, file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
