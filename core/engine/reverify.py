"""Re-judge stored generations with today's rig and say how the verdict compares with the
recorded one, and why it differs.

The rig applies a verdict-rule profile: ``cambrian`` (ours, the default) or ``original``
(the original system's rules of its last version; rig/profiles.py). Its report names the
rules of ours that decided a verdict the original would have reached otherwise:
``stricter_rules`` (ours failed where the original went on) and ``lenient_rules`` (ours
passed where the original failed, e.g. its shorter test timeout). A verdict that differs
because of such a rule is explained by it, and ``--profile original`` reproduces the
recorded one. A verdict that differs with no rule named means the artifact itself behaved
differently here.
"""

from __future__ import annotations

import inspect
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from core.store import Store

PROFILES = ("cambrian", "original")
FIELDS = ("status", "failure_stage", "tests_run", "tests_passed", "failed_tests")
PYTEST_ID = re.compile(r"(\S+\.py::\S+)")


class RigUnusable(RuntimeError):
    pass


def verdict_fields(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a verdict is compared on. ``failed_tests`` are pytest ids of failing tests."""
    if not report:
        return None
    test = (report.get("checks") or {}).get("test") or {}
    failed = set()
    for f in ((report.get("diagnostics") or {}).get("failures") or []):
        if isinstance(f, dict) and isinstance(f.get("test"), str):
            failed.update(PYTEST_ID.findall(f["test"]))
    return {"status": report.get("status"), "failure_stage": report.get("failure_stage"),
            "tests_run": test.get("tests_run"), "tests_passed": test.get("tests_passed"),
            "failed_tests": sorted(failed) or None}


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fields that differ, among those the record states (an unknown stage or a missing
    count is not a difference; failing test ids are compared when both sides list some)."""
    out = {}
    for f in FIELDS:
        before, after = recorded.get(f), now.get(f)
        if before is None or before == "unknown" or before == after:
            continue
        if f == "failed_tests" and after is None:
            continue
        out[f] = {"recorded": before, "now": after}
    return out


def reason_for(row: dict[str, Any]) -> str:
    if "error" in row:
        return row["error"]
    strict, lenient = row.get("stricter_rules") or [], row.get("lenient_rules") or []
    rules = strict + lenient
    named = "; ".join(f"{kind} rule{'s' if len(rs) > 1 else ''} of ours: {', '.join(rs)}"
                      for kind, rs in (("stricter", strict), ("more lenient", lenient)) if rs)
    if row["recorded"] is None:
        return "no recorded verdict to compare with" + (
            f"; {named} decided it (--profile original applies the original's rules)" if rules else "")
    if not row["differs"]:
        return "same"
    if rules:
        return f"{named}; --profile original reproduces the recorded verdict"
    diffs = dict(row["differs"])
    parts = [f"{f} {diffs.pop(f)['recorded']} -> {row['now'][f]}"
             for f in ("status", "failure_stage") if f in diffs]
    counts = [diffs.pop(f, None) for f in ("tests_run", "tests_passed")]
    if any(counts):
        parts.append(f"tests {_tests(row['recorded'])} -> {_tests(row['now'])}")
    if "failed_tests" in diffs:
        before, after = set(diffs["failed_tests"]["recorded"]), set(diffs["failed_tests"]["now"])
        parts.append("failing tests " + ", ".join(
            f"{what} {' '.join(sorted(ids)[:3])}{' ...' if len(ids) > 3 else ''}"
            for what, ids in (("now also", after - before), ("no longer", before - after)) if ids))
    why = f" ({row['diagnostics']})" if row.get("diagnostics") else ""
    if row.get("recorded_from") == "folder placement":
        why += "; the recorded verdict is only the folder the original put it in"
    return f"the artifact behaved differently: {'; '.join(parts)}{why}"


def _tests(v: dict[str, Any]) -> str:
    return "none run" if v.get("tests_run") is None else f"{v.get('tests_passed')}/{v['tests_run']} passed"


def _diagnosis(diag: dict[str, Any]) -> str | None:
    """The failing stage's summary and the last line it wrote to stderr (e.g. `sh: 1: uv: not found`)."""
    if not diag:
        return None
    tail = [ln.strip() for ln in (diag.get("stderr_tail") or "").splitlines() if ln.strip()]
    last = f": {tail[-1][:100]}" if tail else ""
    return f"{diag.get('stage')}: {diag.get('summary')}{last}"


def _call_rig(rig_fn: Callable[..., Any], folder: str, *, backend: str, run_id: str, profile: str):
    kw: dict[str, Any] = {"backend": backend, "run_id": run_id, "generation": None}
    try:
        takes_profile = "profile" in inspect.signature(rig_fn).parameters
    except (TypeError, ValueError):
        takes_profile = True
    if takes_profile:
        kw["profile"] = profile
    elif profile != "cambrian":  # a rig without profiles applies ours
        raise RigUnusable(f"this rig has no verdict profiles: it cannot apply --profile {profile}")
    return rig_fn(folder, **kw)


def reverify(store: Store, numbers: list[int], backend: str = "docker", rig_fn=None, *,
             profile: str = "cambrian", on_row: Callable[[dict[str, Any]], None] | None = None
             ) -> list[dict[str, Any]]:
    """Run each stored artifact through the rig under ``profile``; one row per number, in
    order. A number that names no generation, or one without stored files, gets an error
    row; the others are all judged. Stops judging (error rows for the rest) only when the
    rig itself cannot run."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    if rig_fn is None:
        from rig.api import run_artifact as rig_fn  # type: ignore[no-redef]

    rows = []
    broken: str | None = None
    for n in numbers:
        row = _judge(store, n, backend, rig_fn, profile) if broken is None else \
            {"generation": n, "error": f"not judged: {broken}"}
        if row.get("rig_error"):
            broken = row["rig_error"]
        row["reason"] = reason_for(row)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def _judge(store: Store, n: int, backend: str, rig_fn, profile: str) -> dict[str, Any]:
    from rig.api import RigSetupError

    try:
        g = store.generation(n)
    except KeyError:
        return {"generation": n, "error": f"no generation {n}"}
    origin = store.imported_generation(n)
    base: dict[str, Any] = {"generation": n, "profile": profile}
    if origin:
        base["original"] = {"campaign": origin["original_campaign"], "generation": origin["original_generation"],
                            "source": origin["source"]}
    if not g.artifact_hash:
        what = ("imported record only: the tree held no artifact, no rig run possible" if origin
                else "no stored artifact (the generation never produced code)")
        return base | {"error": what}
    recorded = store.report(n)
    files = store.artifact_files(g.artifact_hash)
    with tempfile.TemporaryDirectory(prefix=f"cambrian-reverify-{n}-") as tmp:
        for rel, data in files.items():
            p = Path(tmp) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        try:
            res = _call_rig(rig_fn, tmp, backend=backend, run_id=f"reverify-{n}-{os.getpid()}", profile=profile)
        except (RigSetupError, RigUnusable) as exc:
            return base | {"error": f"the rig cannot run: {exc}", "rig_error": str(exc)}
    wire = res.report.to_wire()
    before, after = verdict_fields(recorded), verdict_fields(wire)
    diffs = differences(before, after) if before else {}
    diag = wire.get("diagnostics") or {}
    row = base | {
        "recorded": before, "now": after, "differs": diffs, "same": before is not None and not diffs,
        "recorded_from": ((recorded or {}).get("imported") or {}).get("verdict_from") if origin else None,
        "stricter_rules": list(wire.get("stricter_rules") or []),
        "lenient_rules": list(wire.get("lenient_rules") or []),
        "rig_profile": wire.get("profile"),
        "diagnostics": _diagnosis(diag),
    }
    store.add_event("reverified", generation=n, data={"report": wire, "profile": profile, "differs": diffs,
                                                      "stricter_rules": row["stricter_rules"],
                                                      "lenient_rules": row["lenient_rules"]})
    return row
