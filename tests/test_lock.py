"""The locks are the install: requirements.lock for the app (and dev extras), rig/organism.lock
for the rig image, tests/local_llm.lock for the real-server tests' llama.cpp server and model
(the `local-llm` extra, never installed into .venv). They must agree with what they were
generated from (pyproject.toml, .ci/build-tools.in, rig/organism_requirements.txt), carry
hashes for every entry, and the venv running this suite must hold exactly what
requirements.lock names.

Regenerate after changing a pin: `.ci/lock`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
APP_LOCK = ROOT / "requirements.lock"
RIG_LOCK = ROOT / "rig" / "organism.lock"
LOCAL_LLM_LOCK = ROOT / "tests" / "local_llm.lock"
LOCAL_LLM_EXTRA = "local-llm"  # locked apart: tests/local_llm.lock
BUILD_TOOLS = ROOT / ".ci" / "build-tools.in"
RIG_PINS = ROOT / "rig" / "organism_requirements.txt"
RIG_TOOLS = ROOT / "rig" / "organism_tools.txt"
FIX = "regenerate the locks with `.ci/lock`"


def parse_lock(path: Path) -> dict[str, dict]:
    """name -> {version, marker, hashes, via} — an independent reading of the pip/uv format."""
    entries: dict[str, dict] = {}
    current: dict | None = None
    via_block = False
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;\s*(.+?))?\s*\\?$", line)
        if m:
            current = {"version": m.group(2), "marker": m.group(3), "hashes": [], "via": []}
            entries[canonicalize_name(m.group(1))] = current
            via_block = False
            continue
        if current is None:
            continue
        h = re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)
        if h:
            current["hashes"].append(h.group(1))
            continue
        v = re.match(r"^\s+# via(?: (.+))?$", line)
        if v:
            if v.group(1):
                current["via"].append(v.group(1).strip())
            via_block = v.group(1) is None
            continue
        item = re.match(r"^\s+#\s+(.+)$", line)
        if item and via_block:
            current["via"].append(item.group(1).strip())
    return entries


def pyproject_requirements() -> list[Requirement]:
    """The app's pins: dependencies and every extra but the separately locked local-llm one."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for name, extra in data["project"].get("optional-dependencies", {}).items():
        if name != LOCAL_LLM_EXTRA:
            reqs += extra
    return [Requirement(r) for r in reqs]


def local_llm_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["optional-dependencies"][LOCAL_LLM_EXTRA]]


def requirement_lines(path: Path) -> list[Requirement]:
    out = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(Requirement(line))
    return out


def _check_direct(lock: dict[str, dict], reqs: list[Requirement], source: str) -> list[str]:
    problems = []
    for req in reqs:
        name = canonicalize_name(req.name)
        entry = lock.get(name)
        if entry is None:
            problems.append(f"{req} ({source}) is not in the lock")
        elif not req.specifier.contains(entry["version"], prereleases=True):
            problems.append(f"{req} ({source}) but the lock has {entry['version']}")
    return problems


def _check_reachable(lock: dict[str, dict], roots: set[str]) -> list[str]:
    """Every entry is wanted by a root input or by another entry: nothing stale."""
    problems = []
    for name, entry in lock.items():
        vias = entry["via"]
        if not vias:
            problems.append(f"{name}: no '# via' annotation")
            continue
        ok = False
        for via in vias:
            if any(root in via for root in roots):
                ok = True
            elif canonicalize_name(via.split()[0]) in lock:
                ok = True
        if not ok:
            problems.append(f"{name}: wanted only by {vias}, none of which is locked or an input")
    return problems


def test_app_lock_agrees_with_pyproject_and_build_tools():
    lock = parse_lock(APP_LOCK)
    problems = _check_direct(lock, pyproject_requirements(), "pyproject.toml")
    problems += _check_direct(lock, requirement_lines(BUILD_TOOLS), ".ci/build-tools.in")
    problems += _check_reachable(lock, {"pyproject.toml", ".ci/build-tools.in"})
    assert not problems, f"{FIX}:\n" + "\n".join(problems)


def test_build_tools_satisfy_the_build_system():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tools = {canonicalize_name(r.name): r for r in requirement_lines(BUILD_TOOLS)}
    for raw in data["build-system"]["requires"]:
        req = Requirement(raw)
        tool = tools.get(canonicalize_name(req.name))
        assert tool is not None, f"{req.name} (build-system) is missing from .ci/build-tools.in"
        version = next(iter(tool.specifier)).version
        assert req.specifier.contains(version), f"{tool} does not satisfy the build-system's {req}"


def test_rig_lock_agrees_with_the_organism_pins():
    lock = parse_lock(RIG_LOCK)
    problems = _check_direct(lock, requirement_lines(RIG_PINS), "rig/organism_requirements.txt")
    problems += _check_direct(lock, requirement_lines(RIG_TOOLS), "rig/organism_tools.txt")
    problems += _check_reachable(lock, {"organism_requirements.txt", "organism_tools.txt"})
    assert not problems, f"{FIX}:\n" + "\n".join(problems)


def test_local_llm_lock_agrees_with_its_extra_and_stays_out_of_the_venv():
    lock = parse_lock(LOCAL_LLM_LOCK)
    reqs = local_llm_requirements()
    assert reqs, "the local-llm extra names the llama.cpp server and the model"
    problems = _check_direct(lock, reqs, "pyproject.toml [local-llm]")
    problems += _check_reachable(lock, {"local-llm.in"})
    assert not problems, f"{FIX}:\n" + "\n".join(problems)
    # the llama.cpp sdist builds for minutes: it must never be part of the venv install
    app = parse_lock(APP_LOCK)
    assert not {canonicalize_name(r.name) for r in reqs} & set(app), "local-llm pins leaked into requirements.lock"


def test_every_locked_package_carries_hashes():
    for path in (APP_LOCK, RIG_LOCK, LOCAL_LLM_LOCK):
        lock = parse_lock(path)
        assert len(lock) >= (5 if path == LOCAL_LLM_LOCK else 20), path
        bare = [n for n, e in lock.items() if not e["hashes"]]
        assert not bare, f"{path.name}: entries without --hash: {bare}"


def test_the_lock_parser_sees_a_stale_or_missing_entry(tmp_path):
    """The checks above can fail: a dropped entry and a version drift are caught."""
    text = APP_LOCK.read_text()
    dropped = re.sub(r"(?ms)^textual==.*?(?=^[a-z])", "", text)
    lock = parse_lock(_write(tmp_path / "a.lock", dropped))
    assert any("textual" in p and "not in the lock" in p
               for p in _check_direct(lock, pyproject_requirements(), "pyproject.toml"))
    drifted = re.sub(r"^textual==\S+", "textual==0.0.1", text, flags=re.M)
    lock = parse_lock(_write(tmp_path / "b.lock", drifted))
    assert any("textual" in p and "0.0.1" in p
               for p in _check_direct(lock, pyproject_requirements(), "pyproject.toml"))
    orphan = text + "orphan-pkg==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via nothing-here\n"
    lock = parse_lock(_write(tmp_path / "c.lock", orphan))
    assert any(p.startswith("orphan-pkg") for p in _check_reachable(lock, {"pyproject.toml"}))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_venv_holds_exactly_the_lock():
    """`pip freeze` of the interpreter running the suite equals requirements.lock (entries
    whose marker applies here), plus cambrian itself (editable)."""
    out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    installed: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$", line.strip())
        if m:
            installed[canonicalize_name(m.group(1))] = m.group(2)
    want = {name: e["version"] for name, e in parse_lock(APP_LOCK).items()
            if not e["marker"] or Marker(e["marker"]).evaluate()}
    assert "cambrian" not in want
    missing = {n: v for n, v in want.items() if installed.get(n) != v}
    extra = sorted(set(installed) - set(want) - {"cambrian"})
    assert not missing and not extra, (
        f"the venv differs from requirements.lock (tests/run reinstalls from it when the lock "
        f"changes): wrong or missing {missing}; not in the lock {extra}")
