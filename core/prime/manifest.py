"""``manifest.json`` — written by code, never by the model (DESIGN §5 step 5, §6.1).

``build_manifest(files, spec, generation, parent, model, usage, created_at)``:

* adds exactly one spec copy, ``spec/<name>.md`` (:func:`spec_copy_path`: the spec's name with
  anything outside ``[A-Za-z0-9._-]`` replaced by ``-``; ``spec`` when empty) holding the
  spec's exact text, so ``spec-hash`` is the hash of that file's bytes;
* ``files`` = the model's files + the spec copy + ``manifest.json``, sorted;
* ``artifact-hash`` per §6.1 (``rig.hashing.artifact_hash_of``: sorted paths, path + NUL +
  bytes, ``manifest.json`` excluded);
* ``entry`` from the spec's front matter; when absent, :func:`default_entry`:
  ``build: python -m compileall -q .``, ``test: python -m pytest -q``,
  ``start: python -m <name with - as _>``, ``health: http://localhost:<port>/health`` (the
  spec's ``port``, else 8000);
* ``contracts`` from the spec's ``spec-contract`` blocks (omitted when there are none);
* ``token-usage`` as given (``core.prime.generate`` sums every call of the generation,
  repair calls included; ``input`` counts uncached + cache-write + cache-read tokens).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

from core.models import utcnow
from core.prime.writer import write_artifact
from rig.hashing import artifact_hash_of
from rig.schema import Entry, Manifest, TokenUsage

MANIFEST = "manifest.json"


def spec_copy_path(spec: Any) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(getattr(spec, "name", "") or "")).strip("-.")
    return f"spec/{slug or 'spec'}.md"


def default_entry(spec: Any) -> Entry:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(getattr(spec, "name", "") or "app")).strip("_") or "app"
    port = getattr(spec, "port", None) or 8000
    return Entry(
        build="python -m compileall -q .",
        test="python -m pytest -q",
        start=f"python -m {name.lower()}",
        health=f"http://localhost:{port}/health",
    )


def _as_bytes_map(files: Any) -> dict[str, bytes]:
    if isinstance(files, Mapping):
        pairs = list(files.items())
    else:
        pairs = [(f.path, f.content) if hasattr(f, "path") else tuple(f) for f in files]
    return {str(p): (c.encode("utf-8") if isinstance(c, str) else bytes(c)) for p, c in pairs}


def _usage(usage: Any) -> TokenUsage:
    if isinstance(usage, TokenUsage):
        return usage
    if isinstance(usage, Mapping):
        return TokenUsage(input=int(usage.get("input", 0)), output=int(usage.get("output", 0)))
    if usage is None:
        return TokenUsage(input=0, output=0)
    inp, out = usage
    return TokenUsage(input=int(inp), output=int(out))


def artifact_files(files: Any, spec: Any) -> dict[str, bytes]:
    """The model's files plus the spec copy (what the artifact holds besides the manifest)."""
    data = _as_bytes_map(files)
    if MANIFEST in data:
        raise ValueError("manifest.json is written by code, not passed in as a file")
    copy = spec_copy_path(spec)
    spec_bytes = spec.text.encode("utf-8")
    others = [p for p in data if p.startswith("spec/") and p.endswith(".md") and p != copy]
    if others:
        raise ValueError(f"the artifact may hold only the spec copy {copy} under spec/, not {others}")
    if copy in data and data[copy] != spec_bytes:
        raise ValueError(f"{copy} differs from the spec text")
    data[copy] = spec_bytes
    return data


def build_manifest(
    files: Any,
    spec: Any,
    generation: int,
    parent: int,
    model: str,
    usage: Any,
    created_at: str | None = None,
) -> Manifest:
    data = artifact_files(files, spec)
    entry = getattr(spec, "entry", None) or default_entry(spec)
    contracts = list(getattr(spec, "contracts", None) or [])
    fields: dict[str, Any] = {
        "cambrian-version": 1,
        "generation": generation,
        "parent-generation": parent,
        "spec-hash": spec.hash,
        "artifact-hash": artifact_hash_of(data),
        "producer-model": model,
        "token-usage": _usage(usage),
        "files": sorted([*data, MANIFEST]),
        "created-at": created_at or utcnow(),
        "entry": entry,
    }
    if contracts:
        fields["contracts"] = contracts
    return Manifest.model_validate(fields)


def manifest_bytes(manifest: Manifest) -> bytes:
    return (manifest.to_json(indent=2) + "\n").encode("utf-8")


def write_manifest(manifest: Manifest, out_dir: str | os.PathLike[str]) -> bytes:
    data = manifest_bytes(manifest)
    write_artifact({MANIFEST: data}, out_dir, allow={MANIFEST})
    return data


def read_manifest(out_dir: str | os.PathLike[str]) -> Manifest:
    with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as fh:
        return Manifest.model_validate(json.load(fh))
