"""Import an original Cambrian artifacts tree into the store (layout: core/engine/original_tree.py).

- One import is one write transaction: on any error nothing is written.
- Idempotent: a generation is identified by its artifact hash (the recorded one when the
  tree holds only the record); one already in the store is reported as already imported
  and nothing is added for it, so evidence is never counted twice.
- One campaign per original campaign (``import-<campaign id>``; the tree's main line,
  top-level gen-N/, becomes ``import-<tree folder name>``), kind ``import``, state
  completed, with the original's model and spec in its settings.
- Our generation numbers are global, so imported generations get fresh numbers, given in
  the original's order; the original number, campaign and folder are kept in the
  ``imported_generations`` table, together with the token usage the original recorded
  (shown in campaign summaries as recorded usage; no LLM call is entered in the ledger).
- A record without an artifact folder is kept as history: its recorded verdict is stored,
  no files, so no rig run is possible for it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from core.engine.original_tree import Entry, Tree, TreeError, scan_tree
from core.engine.reverify import reverify  # noqa: F401  (its historical import path)
from core.models import Outcome, SpecOrigin
from core.store import Store

ImportErrorReport = TreeError  # the name the CLI catches

MISSING_SPEC = ("# Spec not in the imported tree\n\nThe original recorded spec hash {h} for this campaign; "
                "no artifact in {root} carries its text.\n")


def campaign_id_for(tree: Tree, original: str | None) -> str:
    name = original if original is not None else tree.root.resolve().name
    return "import-" + re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")


def _outcome(e: Entry) -> Outcome:
    return {"viable": Outcome.PROMOTED, "non-viable": Outcome.FAILED}.get(e.status or "", Outcome.INTERRUPTED)


def _reason(e: Entry) -> str:
    where = f"{e.campaign + ' ' if e.campaign else ''}gen-{e.generation}"
    if e.status:
        stage = e.report.get("failure_stage") if e.report else None
        verdict = f"recorded {e.status}" + (f" at {stage}" if e.status == "non-viable" and stage not in
                                            (None, "unknown") else "")
        verdict += f" ({e.verdict_from}{': ' + e.placement + '/' if e.verdict_from == 'folder placement' else ''})"
    else:
        verdict = "no recorded verdict"
    if e.files is None:
        verdict += "; record only, no artifact in the tree: no rig run possible"
    return f"imported {where}: {verdict}"


def _spec_hash(store: Store, tree: Tree, e: Entry) -> str:
    """The spec the artifact carries; else the recorded one, stored when some other artifact
    of the tree carries its text (left unresolved otherwise: no text to store)."""
    name, text = e.spec()
    h = e.recorded_spec_hash
    if text is None and h in tree.specs:
        name, text = tree.specs[h]
    if text is None:
        if h is None:
            e.notes.append("no spec in the artifact and none recorded")
            return "sha256:" + "0" * 64
        e.notes.append(f"spec {h[:19]} is not in the tree: the generation refers to it by hash only")
        return h
    v = store.add_spec(text, origin=SpecOrigin.IMPORT, label=_label(name))
    if h and v.hash != h and e.recorded_spec_hash:
        e.notes.append(f"its spec file hashes to {v.hash[:19]}, the original recorded {h[:19]}")
    return v.hash


def _campaign_spec(store: Store, tree: Tree, cid: str, spec_hashes: list[str], summary: dict | None) -> str:
    known = [h for h in spec_hashes if _has_spec(store, h)]
    wanted = (summary or {}).get("spec_hash")
    if isinstance(wanted, str) and wanted in tree.specs:
        name, text = tree.specs[wanted]
        return store.add_spec(text, origin=SpecOrigin.IMPORT, label=_label(name)).hash
    if known:
        return Counter(known).most_common(1)[0][0]
    h = wanted if isinstance(wanted, str) else (spec_hashes[0] if spec_hashes else "unknown")
    return store.add_spec(MISSING_SPEC.format(h=h, root=tree.root), origin=SpecOrigin.IMPORT,
                          label=f"import:missing-spec:{cid}").hash


def _label(spec_file: str | None) -> str:
    return "import:" + (spec_file or "spec").rsplit("/", 1)[-1].removesuffix(".md")


def _has_spec(store: Store, h: str) -> bool:
    try:
        store.spec_version(h)
        return True
    except KeyError:
        return False


def _settings(tree: Tree, original: str | None, entries: list[Entry]) -> dict[str, Any]:
    c = tree.campaigns.get(original)
    summary = (c.summary if c else None) or {}
    models = Counter(e.model for e in entries if e.model)
    s: dict[str, Any] = {"provider": "import", "source": str(tree.root / (c.folder if c else "")),
                         "original_campaign": original,
                         "model": summary.get("model") or (models.most_common(1)[0][0] if models else None)}
    for key in ("spec_path", "spec_hash", "supervisor_url", "start_generation"):
        if key in summary:
            s[key] = summary[key]
    if isinstance(summary.get("generations"), int):
        s["recorded_generations"] = summary["generations"]
    if isinstance(summary.get("viable"), int):
        s["recorded_viable"] = summary["viable"]
    return s


def _parent(e: Entry, by_orig: dict[tuple[str | None, int], int]) -> int | None:
    """Our number of the original parent: in the same campaign, else the one generation
    with that original number (the original numbered generations across campaigns)."""
    if e.parent is None or e.parent == e.generation:
        return None
    same = by_orig.get((e.campaign, e.parent))
    if same is not None:
        return same
    hits = {ours for (_, n), ours in by_orig.items() if n == e.parent}
    return hits.pop() if len(hits) == 1 else None


def import_tree(store: Store, root: Any) -> dict[str, Any]:
    """Import the tree at ``root``; returns what was created and what was already there."""
    tree = scan_tree(root)
    # one generation per artifact: of several entries with one key, the one carrying the
    # original's record (then files, then a verdict) is imported, the others are named as
    # copies of it
    def rank(e: Entry) -> tuple[bool, bool, bool]:
        return e.record is not None, e.files is not None, e.status is not None

    best: dict[str, Entry] = {}
    for e in tree.entries:
        if e.key not in best or rank(e) > rank(best[e.key]):
            best[e.key] = e
    order = sorted(tree.entries, key=lambda e: (best[e.key] is not e,
                                                e.generation if e.generation is not None else 1 << 62,
                                                e.campaign or "", e.source))
    created: dict[str, list[int]] = {}
    new_campaigns: list[str] = []
    mapping: list[dict[str, Any]] = []
    already: list[dict[str, Any]] = []
    with store.write():
        seen: dict[str, int] = {r["key"]: r["generation"] for r in store.imported_generations()}
        # original (campaign, number) -> ours, for parents: this tree's and earlier imports'
        by_orig: dict[tuple[str | None, int], int] = {
            (r["original_campaign"], r["original_generation"]): r["generation"]
            for r in store.imported_generations() if r["original_generation"] is not None}
        rows: list[dict[str, Any]] = []
        pending: list[tuple[Entry, dict[str, Any]]] = []
        number = first = store.next_generation_number()
        for e in order:
            key = e.key
            prior = seen.get(key)
            if prior is None and e.artifact_hash:
                native = store.generations_with_artifact(e.artifact_hash)
                prior = native[0] if native else None
            if prior is not None:
                already.append({"source": e.source, "generation": prior, "key": key,
                                "original_generation": e.generation, "campaign": e.campaign,
                                "same_import": prior >= first})
                if e.generation is not None:
                    by_orig.setdefault((e.campaign, e.generation), prior)
                continue
            cid = campaign_id_for(tree, e.campaign)
            if e.files is not None:
                store.put_artifact_files(e.files)
            spec_hash = _spec_hash(store, tree, e)
            rows.append({"number": number, "spec_hash": spec_hash, "outcome": _outcome(e).value,
                         "parent": _parent(e, by_orig), "campaign_id": cid, "artifact_hash": e.artifact_hash,
                         "report": (dict(e.report) | {"imported": {"source": e.source, "verdict_from": e.verdict_from}})
                         if e.status else None,
                         "reason": _reason(e), **({"created_at": e.created} if e.created else {})})
            pending.append((e, {"key": key, "generation": number, "campaign_id": cid, "source": e.source,
                                "original_campaign": e.campaign, "original_generation": e.generation,
                                "has_artifact": e.files is not None, "model": e.model,
                                "input_tokens": e.tokens[0], "output_tokens": e.tokens[1]}))
            seen[key] = number
            if e.generation is not None:
                by_orig[(e.campaign, e.generation)] = number
            created.setdefault(cid, []).append(number)
            mapping.append({"source": e.source, "generation": number, "original_generation": e.generation,
                            "campaign": cid, "recorded": e.status, "artifact": e.files is not None,
                            "tokens": sum(e.tokens)})
            number += 1
        for cid in created:
            original = next(e.campaign for e, r in pending if r["campaign_id"] == cid)
            try:
                store.campaign(cid)
            except KeyError:
                entries = [e for e, r in pending if r["campaign_id"] == cid]
                c = tree.campaigns.get(original)
                spec = _campaign_spec(store, tree, cid, [r["spec_hash"] for r in rows if r["campaign_id"] == cid],
                                      c.summary if c else None)
                store.create_campaign(cid, spec, _settings(tree, original, entries), kind="import")
                store.set_campaign_state(cid, "completed", f"imported from {tree.root}"
                                         + (f" (original campaign {original})" if original else " (main line)"))
                new_campaigns.append(cid)
        store.bulk_insert_generations(rows)
        for _, r in pending:
            store.add_imported(r)
        result = {
            "root": str(tree.root),
            "generations": len(rows),
            "campaigns": list(created),  # ids of the campaigns that received generations
            "per_campaign": [_campaign_result(store, cid, created[cid], cid in new_campaigns) for cid in created],
            "new_campaigns": new_campaigns,
            "already_imported": already,
            "record_only": [m for m in mapping if not m["artifact"]],
            "mapping": mapping,
            "skipped": tree.skipped,
            "notes": [f"{e.source}: {n}" for e, _ in pending for n in e.notes],
        }
        if rows:  # a re-import that finds nothing new writes nothing at all
            store.add_event("history_imported", data={
                "root": str(tree.root), "generations": len(rows), "already_imported": len(already),
                "campaigns": {cid: len(ns) for cid, ns in created.items()}, "new_campaigns": new_campaigns})
    return result


def _campaign_result(store: Store, cid: str, numbers: list[int], new: bool) -> dict[str, Any]:
    outcomes = Counter(store.generation(n).outcome.value for n in numbers)
    rows = {r["generation"]: r for r in store.imported_generations(cid)}
    return {"id": cid, "new": new, "original": store.campaign(cid)["settings"].get("original_campaign"),
            "generations": numbers, "outcomes": dict(outcomes),
            "record_only": sum(1 for n in numbers if not rows[n]["has_artifact"]),
            "tokens": sum(rows[n]["input_tokens"] + rows[n]["output_tokens"] for n in numbers)}
