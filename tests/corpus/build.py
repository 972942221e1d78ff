"""Materialise a corpus artifact into a directory the rig can verify.

Each folder under ``tests/corpus/`` is one artifact: its source files plus an
``expected.json`` holding the verdict the rig must reach.  ``materialise()`` copies the
files, adds ``spec/base.md`` (a copy of ``spec_base.md``), computes the artifact hash
(DESIGN §6.1) and writes ``manifest.json``.

``expected.json`` keys (all optional except ``status``/``failure_stage``):

``description``      what the artifact does and why the verdict follows
``inherit``          name of another corpus folder whose files are copied first
                     (this folder's files then override them)
``replace``          ``[{file, old, new}]``: edits of the inherited files, applied in order;
                     each ``old`` must occur exactly once (a variant that differs from its
                     base by a few lines says only those, and fails loudly if the base moves)
``status``           ``viable`` | ``non-viable``
``failure_stage``    ``none`` | ``manifest`` | ``build`` | ``test`` | ``start`` | ``health``
``tests_run``        exact count the test check must report
``tests_passed``     exact count the test check must report
``oom_killed``       expected ``RigResult.oom_killed``
``exit_code``        expected ``diagnostics.exit_code``
``summary_contains`` substrings that must all appear in ``diagnostics.summary``
                     (case-insensitive)
``summary_any``      at least one of these must appear in ``diagnostics.summary``
``failure``          ``{test, file, lines}``: one entry of ``diagnostics.failures`` must name
                     the test (substring), the file (path suffix) and one of the lines
``failures_count``   exact ``len(diagnostics.failures)``
``vector_failed``    name of a spec vector that must be reported as failed
``entry``            overrides merged into ``manifest.entry``
``manifest``         overrides merged into the manifest (after hashing)
``manifest_drop``    manifest keys to delete (after hashing)
``raw_manifest``     literal text written as ``manifest.json`` (corrupt manifests)
``symlinks``         ``{link_path: target}`` created at materialisation (listed in files)
``generate``         ``{dir, count}``: generate that many tiny files under ``dir``
``timeouts``         ``StageTimeouts`` overrides for this artifact (seconds)
``limits``           ``RigLimits`` overrides for this artifact
``backends``         backends this artifact is also run on besides docker (e.g. ``bwrap``)
``adversarial``      true: exercised by ``tests/rig/test_adversarial.py`` instead of the
                     plain corpus test

Another corpus (tests/layers_corpus/) keeps its folders elsewhere and ships its own spec
copy: ``corpus_dir``, ``spec_path`` and ``spec_bytes`` say where and what.

This module has no dependency on the rig beyond ``rig.hashing``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

CORPUS_DIR = Path(__file__).resolve().parent
SPEC_BASE = CORPUS_DIR / "spec_base.md"
SPEC_PATH = "spec/base.md"
_SKIP_NAMES = {"expected.json", "__pycache__", ".pytest_cache"}

DEFAULT_ENTRY = {
    "build": "python -m compileall -q .",
    "test": "python -m pytest -q",
    "start": "python -m app",
    "health": "http://localhost:8401/health",
}


def _artifact_hash(files: Mapping[str, bytes]) -> str:
    try:
        from rig.hashing import artifact_hash_of
    except ImportError:  # keep the corpus usable while the rig is being written
        h = hashlib.sha256()
        for path in sorted(p for p in files if p != "manifest.json"):
            h.update(path.encode("utf-8") + b"\x00" + files[path])
        return "sha256:" + h.hexdigest()
    return artifact_hash_of(files)


def list_artifacts(corpus_dir: Path = CORPUS_DIR) -> list[str]:
    """Names of all corpus artifacts (folders holding an expected.json)."""
    return sorted(p.parent.name for p in corpus_dir.glob("*/expected.json"))


def load_expected(name: str, corpus_dir: Path = CORPUS_DIR) -> dict[str, Any]:
    with open(corpus_dir / name / "expected.json", encoding="utf-8") as fh:
        data = json.load(fh)
    data.setdefault("name", name)
    return data


def _source_files(name: str, seen: tuple[str, ...] = (), corpus_dir: Path = CORPUS_DIR) -> dict[str, bytes]:
    """Relative path -> bytes of the artifact's own files (inheritance resolved)."""
    if name in seen:
        raise ValueError(f"inheritance cycle: {' -> '.join(seen + (name,))}")
    folder = corpus_dir / name
    expected = load_expected(name, corpus_dir)
    files: dict[str, bytes] = {}
    parent = expected.get("inherit")
    if parent:
        files.update(_source_files(parent, seen + (name,), corpus_dir))
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_NAMES or part.endswith(".pyc") for part in rel.parts):
            continue
        if path.is_symlink():
            raise ValueError(f"corpus folder {name} must not hold symlinks; use 'symlinks'")
        if path.is_file():
            files[rel.as_posix()] = path.read_bytes()
    for edit in expected.get("replace") or ():
        text = files.get(edit["file"], b"").decode("utf-8")
        if text.count(edit["old"]) != 1:
            raise ValueError(f"corpus {name}: 'replace' needs exactly one {edit['old']!r} in {edit['file']}, "
                             f"found {text.count(edit['old'])}")
        files[edit["file"]] = text.replace(edit["old"], edit["new"]).encode("utf-8")
    return files


def materialise(
    name: str,
    dest: os.PathLike[str] | str,
    *,
    extra_files: Mapping[str, bytes] | None = None,
    generation: int = 1,
    corpus_dir: Path = CORPUS_DIR,
    spec_path: str = SPEC_PATH,
    spec_bytes: bytes | None = None,
) -> Path:
    """Write artifact ``name`` with its manifest into ``dest`` (created); return it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    expected = load_expected(name, corpus_dir)

    files = _source_files(name, corpus_dir=corpus_dir)
    files.setdefault(spec_path, SPEC_BASE.read_bytes() if spec_bytes is None else spec_bytes)
    if extra_files:
        files.update(extra_files)
    gen = expected.get("generate")
    if gen:
        for i in range(int(gen["count"])):
            files[f"{gen['dir']}/f{i:06d}.txt"] = b"x\n"

    for rel, data in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    # Symlinks are listed like files. Their "content" for hashing is what a naive
    # reader would get by following them (or the link text when that is impossible),
    # so that a rig which forgets to refuse links is not saved by a hash mismatch.
    hash_input = dict(files)
    for rel, target_text in (expected.get("symlinks") or {}).items():
        link = dest / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(target_text, link)
        try:
            with open(link, "rb") as fh:
                hash_input[rel] = fh.read()
        except OSError:
            hash_input[rel] = target_text.encode()

    spec_hash = "sha256:" + hashlib.sha256(files[spec_path]).hexdigest()
    manifest: dict[str, Any] = {
        "cambrian-version": 1,
        "generation": generation,
        "parent-generation": 0,
        "spec-hash": spec_hash,
        "artifact-hash": _artifact_hash(hash_input),
        "producer-model": "corpus/hand-written",
        "token-usage": {"input": 0, "output": 0},
        "files": sorted(set(hash_input) | {"manifest.json"}),
        "created-at": datetime(2024, 1, 1, tzinfo=timezone.utc).isoformat(),
        "entry": {**DEFAULT_ENTRY, **(expected.get("entry") or {})},
    }
    if expected.get("contracts") is not None:
        manifest["contracts"] = expected["contracts"]
    manifest.update(expected.get("manifest") or {})
    for key in expected.get("manifest_drop") or ():
        manifest.pop(key, None)

    if "raw_manifest" in expected:
        (dest / "manifest.json").write_text(expected["raw_manifest"], encoding="utf-8")
    else:
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return dest


def clean(dest: os.PathLike[str] | str) -> None:
    shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual use: build.py NAME DEST
    import sys

    print(materialise(sys.argv[1], sys.argv[2]))
