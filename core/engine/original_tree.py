"""Read an original Cambrian artifacts tree (the original project's published layout).

    DIR/gen-N/                                   the main line's artifacts (files + manifest.json)
    DIR/generations.json                         its records (a list), when present
    DIR/campaigns/<campaign>/gen-N/              a campaign's artifacts
    DIR/gen-0-campaigns/<campaign>/summary.json  a campaign's summary and records
    DIR/gen-0-campaigns/<campaign>/gen-N/        its viable artifacts
    DIR/gen-0-campaigns/<campaign>/failed/gen-N/ its failed artifacts

A summary holds campaign_id, spec_path, spec_hash, model, supervisor_url,
start_generation, generations (the number of generations, an integer), viable and
records; each record holds generation, parent, spec-hash, artifact-hash, outcome,
created, container-id, campaign-id and viability (the full viability report). A record
may have no artifact folder and a folder no record. A folder may also carry its verdict
as viability-report.json.

Nothing here writes: ``scan_tree`` returns what the tree holds, as entries (one per
original generation: folder, record, or both) and campaigns, for the importer to store.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rig.hashing import artifact_hash_of, sha256_hex

REPORT_NAMES = ("viability-report.json", "viability_report.json")
MAX_FILE_BYTES = 5_000_000
GEN_DIR = re.compile(r"^gen-(\d+)$")
CAMPAIGN_ROOTS = ("campaigns", "gen-0-campaigns")


class TreeError(Exception):
    """The tree cannot be read as an original artifacts tree (nothing was imported)."""


@dataclass
class Entry:
    """One original generation: its artifact folder, its record, or both."""

    campaign: str | None  # the original campaign id; None for the tree's main line
    generation: int | None  # the original generation number
    folder: str | None = None  # tree-relative artifact folder
    record_source: str | None = None  # tree-relative file holding the record
    files: dict[str, bytes] | None = None
    manifest: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    report: dict[str, Any] | None = None  # the recorded viability report
    verdict_from: str = "none"  # report file | record | folder placement | none
    placement: str | None = None  # "viable" / "failed": where gen-0-campaigns put the folder
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        if self.folder:
            return self.folder
        return f"{self.record_source}#gen-{self.generation}"

    @property
    def artifact_hash(self) -> str | None:
        """Of the files read (what we store and run); None for a record without a folder."""
        return artifact_hash_of(self.files) if self.files is not None else None

    @property
    def recorded_hash(self) -> str | None:
        for d, key in ((self.record, "artifact-hash"), (self.manifest, "artifact-hash")):
            if isinstance(d, dict) and isinstance(d.get(key), str) and d[key].startswith("sha256:"):
                return d[key]
        return None

    @property
    def key(self) -> str:
        """Identity across imports: the artifact hash (recorded, when only the record is here)."""
        return self.artifact_hash or self.recorded_hash or f"record:{self.campaign}:{self.generation}"

    @property
    def parent(self) -> int | None:
        for d, key in ((self.record, "parent"), (self.manifest, "parent-generation")):
            if isinstance(d, dict) and isinstance(d.get(key), int):
                return d[key]
        return None

    @property
    def status(self) -> str | None:
        s = (self.report or {}).get("status")
        return s if s in ("viable", "non-viable") else None

    def spec(self) -> tuple[str | None, str | None]:
        """(spec file, text) carried by the artifact, or (None, None)."""
        if not self.files:
            return None, None
        specs = sorted(p for p in self.files if p.startswith("spec/") and p.endswith(".md"))
        listed = (self.manifest or {}).get("files")
        if len(specs) > 1 and isinstance(listed, list):
            specs = [p for p in specs if p in listed] or specs
        for p in specs[:1]:
            try:
                return p, self.files[p].decode("utf-8")
            except UnicodeDecodeError:
                return p, None
        return None, None

    @property
    def recorded_spec_hash(self) -> str | None:
        for d, key in ((self.record, "spec-hash"), (self.manifest, "spec-hash")):
            if isinstance(d, dict) and isinstance(d.get(key), str) and d[key].startswith("sha256:"):
                return d[key]
        return None

    @property
    def model(self) -> str | None:
        m = (self.manifest or {}).get("producer-model")
        return m if isinstance(m, str) and m else None

    @property
    def tokens(self) -> tuple[int, int]:
        """(input, output) the original recorded: the manifest's token-usage, else the
        report's fitness token_input/token_output."""
        usage = (self.manifest or {}).get("token-usage")
        if isinstance(usage, dict) and isinstance(usage.get("input"), int) and isinstance(usage.get("output"), int):
            return max(0, usage["input"]), max(0, usage["output"])
        fit = (self.report or {}).get("fitness")
        if isinstance(fit, dict) and isinstance(fit.get("token_input"), int) and isinstance(fit.get("token_output"), int):
            return max(0, fit["token_input"]), max(0, fit["token_output"])
        return 0, 0

    @property
    def created(self) -> str | None:
        """When the original made it, in our timestamp form; None when unknown."""
        for d, key in ((self.record, "created"), (self.manifest, "created-at"), (self.manifest, "created_at")):
            v = (d or {}).get(key) if isinstance(d, dict) else None
            if isinstance(v, str):
                try:
                    t = datetime.fromisoformat(v.replace("Z", "+00:00"))
                except ValueError:
                    continue
                t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
                return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return None


@dataclass
class Campaign:
    id: str | None  # None: the tree's main line (top-level gen-N/)
    folder: str
    summary: dict[str, Any] | None = None  # summary.json without its records


@dataclass
class Tree:
    root: Path
    campaigns: dict[str | None, Campaign]
    entries: list[Entry]
    skipped: list[str]
    specs: dict[str, tuple[str, str]]  # spec hash -> (file name, text), from every artifact


def _json_file(p: Path, root: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TreeError(f"{p.relative_to(root)}: cannot read it as JSON: {exc}") from exc


def _gen_dirs(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = GEN_DIR.match(p.name)
        if m and p.is_dir() and not p.is_symlink():
            out.append((int(m.group(1)), p))
    return sorted(out)


def _read_folder(d: Path, root: Path, entry: Entry) -> None:
    files: dict[str, bytes] = {}
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if "__pycache__" in rel.split("/") or rel in REPORT_NAMES:
            continue
        if p.is_symlink():
            entry.notes.append(f"{rel} is a symlink: not imported")
            continue
        if not p.is_file():
            continue
        if p.stat().st_size > MAX_FILE_BYTES:
            entry.notes.append(f"{rel} is larger than {MAX_FILE_BYTES} bytes: not imported")
            continue
        files[rel] = p.read_bytes()
    entry.files = files
    entry.folder = d.relative_to(root).as_posix()
    for name in REPORT_NAMES:
        if (d / name).is_file():
            try:
                rep = json.loads((d / name).read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError):
                entry.notes.append(f"{name} is not JSON: its verdict is not imported")
                break
            if isinstance(rep, dict):
                entry.report, entry.verdict_from = rep, "report file"
            break
    raw = files.get("manifest.json")
    if raw is None:
        entry.notes.append("no manifest.json")
        return
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        entry.notes.append("manifest.json is not JSON (imported as it is; the rig will judge it)")
        return
    if not isinstance(manifest, dict):
        entry.notes.append("manifest.json is not an object")
        return
    entry.manifest = manifest
    listed = manifest.get("files")
    if isinstance(listed, list):
        dup = sorted(p for p, n in Counter(x for x in listed if isinstance(x, str)).items() if n > 1)
        if dup:
            entry.notes.append(f"manifest lists {', '.join(dup)} twice (kept as it is)")
        missing = sorted(p for p in listed if isinstance(p, str) and p not in files)
        if missing:
            entry.notes.append(f"manifest lists missing file(s): {', '.join(missing[:5])}")
    if isinstance(manifest.get("generation"), int) and entry.generation is not None \
            and manifest["generation"] != entry.generation:
        entry.notes.append(f"manifest says generation {manifest['generation']}, the folder gen-{entry.generation}")


def _records(data: Any, where: str, skipped: list[str]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(data):
        if isinstance(r, dict) and isinstance(r.get("generation"), int):
            out.append(r)
        else:
            skipped.append(f"{where}: record {i} has no integer 'generation'; not imported")
    return out


def _attach(entries: list[Entry], rec: dict[str, Any], campaign: str | None, source: str,
            by_ref: dict[str, Entry] | None = None) -> None:
    """Pair a record with its folder (same campaign and number, preferring the one whose
    files hash to the recorded artifact hash), or keep it as a record-only entry."""
    ref = rec.get("artifact_ref")
    cands = [by_ref[ref]] if by_ref and isinstance(ref, str) and ref in by_ref else [
        e for e in entries if e.campaign == campaign and e.generation == rec["generation"]]
    cands = [e for e in cands if e.record is None]
    h = _real_hash(rec.get("artifact-hash"))
    # a record judged the artifact it names: folder files that hash otherwise (a folder
    # overwritten later) are another artifact, and the record stays history on its own
    match = [e for e in cands if h is None or e.artifact_hash == h]
    for e in cands[:1] if cands and not match else []:
        e.notes.append(f"its record (in {source}) names another artifact, {h[:19]}: "
                       "that one is kept as record-only history, this one has no recorded verdict")
    target = match[0] if match else Entry(campaign=campaign, generation=rec["generation"])
    if not match:
        entries.append(target)
    _give_record(target, rec, source)


def _give_record(target: Entry, rec: dict[str, Any], source: str) -> None:
    target.record, target.record_source = rec, source
    viability = rec.get("viability")
    if isinstance(viability, dict) and target.verdict_from in ("none", "folder placement"):
        target.report, target.verdict_from = viability, "record"


def _real_hash(h: Any) -> str | None:
    """A recorded artifact hash, unless absent or the all-zero placeholder."""
    if isinstance(h, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", h) and h != "sha256:" + "0" * 64:
        return h
    return None


def _join_records(entries: list[Entry]) -> list[Entry]:
    """A record whose artifact sits in another folder of the tree (not where its number
    says) joins that folder's entry instead of standing alone."""
    folders = {e.artifact_hash: e for e in entries if e.files is not None and e.record is None}
    out = []
    for e in entries:
        target = folders.get(e.recorded_hash) if e.files is None and e.record is not None else None
        if target is not None and target.record is None:
            _give_record(target, e.record, e.record_source or "")
            target.notes.append(f"its record is that of {e.campaign or 'main line'} gen-{e.generation}")
            continue
        out.append(e)
    return out


def scan_tree(root: str | Path) -> Tree:
    root = Path(root)
    if not root.is_dir():
        raise TreeError(f"{root} is not a directory")
    entries: list[Entry] = []
    skipped: list[str] = []
    campaigns: dict[str | None, Campaign] = {}

    main: list[Entry] = []
    for n, d in _gen_dirs(root):
        e = Entry(campaign=None, generation=n)
        _read_folder(d, root, e)
        main.append(e)
    for p in sorted(root.iterdir()):
        if p.is_dir() and not GEN_DIR.match(p.name) and p.name not in CAMPAIGN_ROOTS and (p / "manifest.json").is_file():
            skipped.append(f"{p.name}: an artifact folder not named gen-N; not imported")
    if main or (root / "generations.json").is_file():
        campaigns[None] = Campaign(None, ".")
    if (root / "generations.json").is_file():
        data = _json_file(root / "generations.json", root)
        if not isinstance(data, list):
            raise TreeError("generations.json: expected a list of generation records")
        by_ref = {e.folder: e for e in main if e.folder}
        for rec in _records(data, "generations.json", skipped):
            _attach(main, rec, None, "generations.json", by_ref)
    entries += main

    for top in CAMPAIGN_ROOTS:
        base = root / top
        if not base.is_dir():
            continue
        for c in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()):
            summary = None
            if (c / "summary.json").is_file():
                summary = _json_file(c / "summary.json", root)
                if not isinstance(summary, dict):
                    raise TreeError(f"{top}/{c.name}/summary.json: expected an object")
                records = summary.get("records", [])
                if not isinstance(records, list):
                    raise TreeError(f"{top}/{c.name}/summary.json: 'records' is not a list")
            cid = summary.get("campaign_id") if summary and isinstance(summary.get("campaign_id"), str) else c.name
            if cid in campaigns:
                raise TreeError(f"campaign {cid} appears twice ({campaigns[cid].folder} and {top}/{c.name})")
            found: list[Entry] = []
            placed = top == "gen-0-campaigns"  # there, gen-N/ holds viable and failed/gen-N/ failed ones
            for sub, placement in ((c, "viable"), (c / "failed", "failed")):
                for n, d in _gen_dirs(sub):
                    e = Entry(campaign=cid, generation=n, placement=placement if placed else None)
                    _read_folder(d, root, e)
                    found.append(e)
            if summary is not None:
                for rec in _records(summary["records"] if "records" in summary else [],
                                    f"{top}/{c.name}/summary.json", skipped):
                    _attach(found, rec, cid, f"{top}/{c.name}/summary.json")
            if not found and summary is None:
                continue
            for e in found:
                if e.report is None and e.placement:
                    e.verdict_from = "folder placement"
                    e.report = {"generation": e.generation,
                                "status": "viable" if e.placement == "viable" else "non-viable",
                                "failure_stage": "none" if e.placement == "viable" else "unknown",
                                "checks": {}}
            campaigns[cid] = Campaign(cid, f"{top}/{c.name}",
                                      {k: v for k, v in (summary or {}).items() if k != "records"} or None)
            entries += found

    entries = _join_records(entries)
    specs: dict[str, tuple[str, str]] = {}
    for e in entries:
        name, text = e.spec()
        if text is not None:
            specs.setdefault(sha256_hex(text.encode("utf-8")), (name or "spec.md", text))
    return Tree(root=root, campaigns=campaigns, entries=entries, skipped=skipped, specs=specs)
