"""Per-generation fitness metrics (DESIGN §9.3).

Absent is not zero: a metric whose stage never ran (or whose input is unknown) is
omitted, never reported as 0. Static metrics are computed on the host from the
artifact's bytes with ``ast`` (nothing is executed).
"""

from __future__ import annotations

import ast
import sys
from typing import Any, Mapping

from rig.runner import HIDDEN_KINDS, is_test_file
from rig.schema import STAGES

_STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _parse(data: bytes) -> ast.Module | None:
    from rig.pysource import parse_python

    return parse_python(data)


def local_modules(paths: list[str]) -> set[str]:
    """Top-level names the artifact itself provides (modules and packages)."""
    out = set()
    for p in paths:
        if p.endswith(".py"):
            out.add(p.split("/", 1)[0][:-3] if "/" not in p else p.split("/", 1)[0])
    return out


def imported_top_levels(tree: ast.AST) -> set[str]:
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                mods.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)


def is_trivial_assert(node: ast.Assert) -> bool:
    """`assert True`, `assert <constant>`, `assert x == x` (same expression on both sides),
    or a comparison between constants only."""
    test = node.test
    if isinstance(test, ast.Constant):
        return True
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        if _same(left, right):
            return True
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            return True
    return False


def _test_functions(tree: ast.AST) -> list[ast.AST]:
    return [n for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")]


def static_metrics(files: Mapping[str, bytes]) -> dict[str, Any]:
    src_files = src_lines = test_files = test_lines = 0
    deps: set[str] = set()
    local = local_modules(list(files))
    test_funcs = asserts = trivial = 0
    parsed_all = True
    for path, data in files.items():
        if not path.endswith(".py"):
            continue
        tree = _parse(data)
        if tree is None:
            parsed_all = False
        if is_test_file(path):
            test_files += 1
            test_lines += _lines(data)
            if tree is not None:
                for fn in _test_functions(tree):
                    test_funcs += 1
                    for node in ast.walk(fn):
                        if isinstance(node, ast.Assert):
                            asserts += 1
                            trivial += is_trivial_assert(node)
        else:
            src_files += 1
            src_lines += _lines(data)
            if tree is not None:
                deps |= {m for m in imported_top_levels(tree) if m not in _STDLIB and m not in local}
    out: dict[str, Any] = {
        "source_files": src_files, "source_lines": src_lines,
        "test_files": test_files, "test_lines": test_lines,
    }
    if parsed_all:
        out["dependency_count"] = len(deps)
        out["dependencies"] = sorted(deps)
    if test_funcs:
        out["test_functions"] = test_funcs
        out["assertion_density"] = round(asserts / test_funcs, 4)
    if asserts:
        out["trivial_assert_rate"] = round(trivial / asserts, 4)
    return out


def compute_fitness(*, files: Mapping[str, bytes] | None, token_usage: tuple[int, int] | None,
                    checks: Mapping[str, Any], stage_ms: Mapping[str, int]) -> dict[str, Any]:
    """checks: the report's StageCheck objects (or dicts) keyed by stage name."""
    fit: dict[str, Any] = {}
    for stage in STAGES:
        if stage in checks and stage in stage_ms:
            fit[f"{stage}_ms"] = int(stage_ms[stage])
    completed = 0
    for stage in STAGES:
        chk = checks.get(stage)
        if chk is None or not _get(chk, "passed"):
            break
        completed += 1
    fit["stages_completed"] = completed
    test = checks.get("test")
    if test is not None and _get(test, "tests_run") is not None:
        run = _get(test, "tests_run")
        fit["tests_run"] = run
        fit["tests_passed"] = _get(test, "tests_passed")
        if run:
            fit["test_pass_rate"] = round(_get(test, "tests_passed") / run, 4)
    health = checks.get("health")
    if health is not None:
        for key in ("vectors", "contracts"):
            results = _get(health, key) or []
            if results:
                passed = sum(1 for r in results if _get(r, "passed"))
                fit[f"{key[:-1]}_pass_rate"] = round(passed / len(results), 4)
                fit[f"{key}_total"] = len(results)
        for kind in HIDDEN_KINDS:  # sealed / examiner / red-team probes: absent unless run
            results = _get(health, kind) or []
            if results:
                passed = sum(1 for r in results if _get(r, "passed"))
                fit[f"{kind}_pass_rate"] = round(passed / len(results), 4)
                fit[f"{kind}_total"] = len(results)
    if token_usage is not None:
        fit["tokens_in"], fit["tokens_out"] = token_usage
    if files is not None:
        fit.update(static_metrics(files))
    return fit


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
