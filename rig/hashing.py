"""Artifact and spec hashing (DESIGN §6.1). Standard library only: the runner uses it."""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Mapping


def sha256_hex(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def artifact_hash_of(files: Mapping[str, bytes]) -> str:
    """sha256 over files in sorted path order, manifest excluded: path, NUL, bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in files if p != "manifest.json"):
        h.update(path.encode("utf-8"))
        h.update(b"\x00")
        h.update(files[path])
    return "sha256:" + h.hexdigest()


def artifact_hash_of_dir(root: str, paths: Iterable[str]) -> str:
    """Hash the listed files under root (symlinks are not followed)."""
    data: dict[str, bytes] = {}
    for rel in paths:
        if rel == "manifest.json":
            continue
        full = os.path.join(root, rel)
        with open(full, "rb") as fh:
            data[rel] = fh.read()
    return artifact_hash_of(data)
