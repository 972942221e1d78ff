"""The layer contract (DESIGN §4) as a checked rule, statically and at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Modules that run inside the container on the artifact's Python.
IN_CONTAINER = ["rig/runner.py"]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level > 0:
                found.add("." + (node.module or ""))
    return found


def py_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_core_and_rig_never_import_textual_or_the_tui():
    bad = []
    for folder in ("core", "rig"):
        for f in py_files(folder):
            mods = imports_of(f)
            for m in mods & {"textual", "cambrian_tui", "textual_plotext", "textual_serve"}:
                bad.append(f"{f.relative_to(ROOT)} imports {m}")
    assert bad == []


def test_rig_never_imports_core():
    bad = [f"{f.relative_to(ROOT)}" for f in py_files("rig") if "core" in imports_of(f)]
    assert bad == []


def _sibling(mod: str) -> Path | None:
    """rig-internal module imported by an in-container module (it is injected too)."""
    name = mod.lstrip(".")
    if mod.startswith("."):
        cand = ROOT / "rig" / (name.replace(".", "/") + ".py")
    elif name.startswith("rig."):
        cand = ROOT / (name.replace(".", "/") + ".py")
    else:
        return None
    return cand if cand.exists() else None


def full_imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_in_container_runner_is_stdlib_only():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    todo = [ROOT / rel for rel in IN_CONTAINER]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        assert path.exists(), f"in-container module {path} is missing"
        seen.add(path)
        for mod in full_imports_of(path):
            sib = _sibling(mod) if (mod.startswith(".") or mod.startswith("rig.")) else None
            if sib is not None:
                todo.append(sib)
                continue
            assert mod.split(".")[0] in stdlib, f"{path.relative_to(ROOT)} imports non-stdlib {mod!r}"
    assert seen


def test_importing_core_and_rig_does_not_load_textual():
    mods = []
    for folder in ("core", "rig"):
        for f in py_files(folder):
            if not (f.parent / "__init__.py").exists():
                continue  # not a package module (e.g. a script copied into the image)
            rel = f.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods.append(".".join(parts))
    code = (
        "import importlib, sys\n"
        f"mods = {mods!r}\n"
        "failed = []\n"
        "for m in mods:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        failed.append((m, repr(e)))\n"
        "loaded = sorted(k for k in sys.modules if k.split('.')[0] in ('textual', 'cambrian_tui'))\n"
        "print(loaded, failed)\n"
        "sys.exit(1 if loaded or failed else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


# --- one application layer (issue 20) ---------------------------------------------------------


def test_the_tui_writes_no_sql_and_redirects_no_output():
    """The check anyone can run: the TUI reads and commands through core.app only."""
    res = subprocess.run(["grep", "-rnE", r"execute\(|SELECT |redirect_std", "cambrian_tui/"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stdout == "", res.stdout  # grep: 1 = nothing found


# What the command-line modules may import from this project: the application layer, the home
# resolution, pure formatting, and the few self-contained entry points that print for themselves.
CLI_MODULES = ["cambrian_tui/cli.py", "core/engine/cli.py", "core/evolution/cli.py", "core/distill/cli.py",
               "core/examiner/cli.py", "core/hosts/cli.py"]
CLI_MAY_IMPORT = ("core.app", "core.home", "core.quiet", "core.evolution.describe", "core.evolution.kinds",
                  "cambrian_tui.app", "cambrian_tui.settings", "cambrian_tui.keys", "cambrian_tui.doctor",
                  "cambrian_tui.remote", "core.engine.cli", "core.evolution.cli", "rig.image", "rig.verify",
                  "core.engine.verify_reproduce", "core.examiner.cli",
                  "core.prime.generate", "core.llm.fake_server", "core.distill.cli", "core.hosts.cli")


def _project_imports(path: Path) -> set[str]:
    out = set()
    for mod in full_imports_of(path):
        if mod.split(".")[0] in ("core", "rig", "cambrian_tui"):
            out.add(mod)
    return out


def test_cli_modules_only_parse_and_print():
    bad = []
    for rel in CLI_MODULES:
        path = ROOT / rel
        for mod in _project_imports(path):
            if not any(mod == ok or mod.startswith(ok + ".") for ok in CLI_MAY_IMPORT):
                bad.append(f"{rel} imports {mod}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in ("Store", "sqlite3", "subprocess", "redirect_stdout"):
                bad.append(f"{rel}:{node.lineno} uses {node.id}")
            if isinstance(node, ast.Attribute) and node.attr in ("execute", "conn", "send_command"):
                bad.append(f"{rel}:{node.lineno} uses .{node.attr}")
    assert bad == []


def test_the_tui_redeclares_no_core_constant():
    """A constant of core written again in the TUI drifts (DEFAULT_MODEL did): import it."""
    def constants(folder: str) -> dict[str, str]:
        out = {}
        for f in py_files(folder):
            for node in ast.parse(f.read_text(encoding="utf-8")).body:
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, ast.AnnAssign) else []
                for t in targets:
                    if isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 2:
                        out[t.id] = str(f.relative_to(ROOT))
        return out

    core, tui = constants("core"), constants("cambrian_tui")
    clash = {name: (tui[name], core[name]) for name in set(core) & set(tui)}
    assert clash == {}


def test_the_tui_uses_no_private_textual_screen_stacks():
    hits = [f"{f.relative_to(ROOT)}" for f in py_files("cambrian_tui") if "_screen_stacks" in f.read_text()]
    assert hits == []
