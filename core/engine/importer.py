"""Import an original Cambrian artifacts tree, and re-verify stored generations.

Layout read (the original project's):

    DIR/gen-N/                          one artifact per folder (manifest.json + files)
    DIR/campaigns/<campaign>/gen-N/     artifacts of a campaign
    DIR/gen-0-campaigns/<campaign>/summary.json
                                        generation records of a campaign run from gen 0

A generation folder may carry its recorded verdict as `viability-report.json` (also
accepted: `viability_report.json`, `report.json`). A summary's records are read from
its `generations` (or `results`) list; each record names its `generation` and holds a
full report (`report` / `viability` / `viability_report`) or at least `status` and
`failure_stage` (plus `tests_run` / `tests_passed` when present).

Our generation numbers are global, so imported generations get fresh numbers; the
original number and campaign are kept in the reason and the event log.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from core.models import Outcome, SpecOrigin
from core.store import Store

REPORT_NAMES = ("viability-report.json", "viability_report.json", "report.json")
MAX_FILE_BYTES = 5_000_000


class ImportErrorReport(Exception):
    pass


def _gen_dirs(folder: Path) -> list[tuple[int, Path]]:
    out = []
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink() and p.name.startswith("gen-") and p.name[4:].isdigit():
            out.append((int(p.name[4:]), p))
    return sorted(out)


def _read_files(d: Path) -> tuple[dict[str, bytes], list[str]]:
    files, skipped = {}, []
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_symlink():
            skipped.append(f"{rel}: symlink")
            continue
        if not p.is_file() or rel in REPORT_NAMES or "__pycache__" in rel:
            continue
        if p.stat().st_size > MAX_FILE_BYTES:
            skipped.append(f"{rel}: larger than {MAX_FILE_BYTES} bytes")
            continue
        files[rel] = p.read_bytes()
    return files, skipped


def _report_of(d: Path) -> dict[str, Any] | None:
    for name in REPORT_NAMES:
        p = d / name
        if p.is_file():
            try:
                return json.loads(p.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                return {"status": None, "_unreadable": name}
    return None


def _record_report(rec: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("report", "viability", "viability_report"):
        if isinstance(rec.get(key), dict):
            return rec[key]
    if "status" in rec or "viable" in rec:
        status = rec.get("status") or ("viable" if rec.get("viable") else "non-viable")
        rep: dict[str, Any] = {"status": status, "failure_stage": rec.get("failure_stage") or
                               ("none" if status == "viable" else "unknown")}
        if "tests_run" in rec or "tests_passed" in rec:
            rep["checks"] = {"test": {"passed": status == "viable", "duration_ms": 0,
                                      "tests_run": rec.get("tests_run"), "tests_passed": rec.get("tests_passed")}}
        return rep
    return None


def _spec_text(files: dict[str, bytes]) -> str | None:
    specs = [p for p in files if p.startswith("spec/") and p.endswith(".md")]
    if len(specs) != 1:
        return None
    try:
        return files[specs[0]].decode("utf-8")
    except UnicodeDecodeError:
        return None


def import_tree(store: Store, root: str | os.PathLike[str]) -> dict[str, Any]:
    root = Path(root)
    if not root.is_dir():
        raise ImportErrorReport(f"{root} is not a directory")
    groups: list[tuple[str | None, list[tuple[int, Path]]]] = [(None, _gen_dirs(root))]
    camp_root = root / "campaigns"
    if camp_root.is_dir():
        for c in sorted(p for p in camp_root.iterdir() if p.is_dir()):
            groups.append((c.name, _gen_dirs(c)))
    summaries: dict[str, dict[int, dict]] = {}
    sroot = root / "gen-0-campaigns"
    if sroot.is_dir():
        for c in sorted(p for p in sroot.iterdir() if p.is_dir()):
            s = c / "summary.json"
            if not s.is_file():
                continue
            try:
                data = json.loads(s.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ImportErrorReport(f"{s}: not JSON: {exc}") from exc
            recs = data.get("generations") or data.get("results") or []
            summaries[c.name] = {int(r["generation"]): r for r in recs if isinstance(r, dict) and "generation" in r}

    result: dict[str, Any] = {"generations": 0, "campaigns": [], "skipped": [], "mapping": []}
    fallback_spec = None
    for campaign, gens in groups:
        cid = None
        number_map: dict[int, int] = {}
        for orig, d in gens:
            files, skipped = _read_files(d)
            result["skipped"] += [f"{d.relative_to(root)}/{s}" for s in skipped]
            spec_text = _spec_text(files)
            if spec_text is None and fallback_spec is None:
                result["skipped"].append(f"{d.relative_to(root)}: no single spec/*.md; generation skipped")
                continue
            spec = store.add_spec(spec_text or fallback_spec, origin=SpecOrigin.IMPORT,
                                  label=f"import:{root.name}")
            fallback_spec = fallback_spec or spec_text
            if campaign is not None and cid is None:
                cid = f"import-{root.name}-{campaign}"
                try:
                    store.campaign(cid)
                except KeyError:
                    store.create_campaign(cid, spec.hash, {"provider": "import", "source": str(d.parent)},
                                          kind="import")
                    store.set_campaign_state(cid, "completed", f"imported from {d.parent}")
                result["campaigns"].append(cid)
            report = _report_of(d)
            if report is None and campaign is not None and campaign in summaries:
                rec = summaries[campaign].get(orig)
                report = _record_report(rec) if rec else None
            manifest = {}
            try:
                manifest = json.loads(files.get("manifest.json", b"{}"))
            except ValueError:
                pass
            parent_orig = manifest.get("parent-generation")
            g = store.create_generation(spec_hash=spec.hash, campaign_id=cid,
                                        parent=number_map.get(parent_orig) if isinstance(parent_orig, int) else None)
            number_map[orig] = g.number
            store.record_artifact(g.number, files)
            where = f"{campaign + '/' if campaign else ''}gen-{orig}"
            store.add_event("imported", generation=g.number, campaign_id=cid,
                            data={"source": str(d), "original_generation": orig, "campaign": campaign})
            status = (report or {}).get("status")
            if status in ("viable", "non-viable"):
                report = dict(report)
                report.setdefault("imported_from", where)
                store.record_report(g.number, report)
                store.set_outcome(g.number, Outcome.PROMOTED if status == "viable" else Outcome.FAILED,
                                  f"imported {where}: recorded {status}")
            else:
                store.set_outcome(g.number, Outcome.INTERRUPTED, f"imported {where}: no recorded verdict")
            result["generations"] += 1
            result["mapping"].append({"source": where, "generation": g.number, "recorded": status})
    # summaries of campaigns whose artifacts are not in the tree are still history
    for campaign, recs in summaries.items():
        if any(m["source"].startswith(campaign + "/") for m in result["mapping"]):
            continue
        result["skipped"].append(f"gen-0-campaigns/{campaign}: {len(recs)} records without artifacts")
    return result


def _counts(report: dict[str, Any] | None) -> tuple[Any, Any, Any, Any]:
    if not report:
        return (None, None, None, None)
    t = (report.get("checks") or {}).get("test") or {}
    return (report.get("status"), report.get("failure_stage"), t.get("tests_run"), t.get("tests_passed"))


def reverify(store: Store, numbers: list[int], backend: str = "docker", rig_fn=None) -> list[dict[str, Any]]:
    """Run stored artifacts through today's rig; compare with the recorded verdicts."""
    if rig_fn is None:
        from rig.api import run_artifact as rig_fn  # type: ignore[no-redef]
    rows = []
    for n in numbers:
        g = store.generation(n)
        if not g.artifact_hash:
            rows.append({"generation": n, "error": "no stored artifact"})
            continue
        recorded = store.report(n)
        files = store.artifact_files(g.artifact_hash)
        with tempfile.TemporaryDirectory(prefix=f"cambrian-reverify-{n}-") as tmp:
            for rel, data in files.items():
                p = Path(tmp) / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
            res = rig_fn(tmp, backend=backend, run_id=f"reverify-{n}-{os.getpid()}", generation=None)
        now = res.report.to_wire()
        before, after = _counts(recorded), _counts(now)
        fields = ("status", "failure_stage", "tests_run", "tests_passed")
        diffs = {f: {"recorded": b, "now": a} for f, b, a in zip(fields, before, after)
                 if recorded is not None and b != a and b is not None}
        store.add_event("reverified", generation=n, data={"report": now, "differs": diffs})
        rows.append({"generation": n, "recorded": dict(zip(fields, before)) if recorded else None,
                     "now": dict(zip(fields, after)), "differs": diffs, "same": recorded is not None and not diffs})
    return rows
