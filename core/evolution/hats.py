"""Hats: named system-prompt overlays (``spec/hats/*.md``).

A hat file is a short YAML front matter with a one-line ``description``, then the fragment.
Wearing a hat appends the fragment, as its own paragraph, to the spec's designated
system-prompt section (``core.spec.insert_into_section``), so every variant is still a plain
spec version that passes the grammar. The file name (without ``.md``) is the hat's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.home import spec_dir

__all__ = ["Hat", "hats_dir", "load_hats", "parse_hat"]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Hat:
    name: str
    description: str
    fragment: str


def hats_dir() -> Path:
    return spec_dir() / "hats"


def parse_hat(name: str, text: str) -> Hat:
    if not _NAME_RE.match(name):
        raise ValueError(f"hat name {name!r} must be lowercase letters, digits and dashes")
    description = ""
    body = text
    m = re.match(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", text, re.S)
    if m:
        meta = yaml.safe_load(m.group(1)) or {}
        if not isinstance(meta, dict):
            raise ValueError(f"hat {name!r}: front matter must be a mapping")
        description = str(meta.get("description", "")).strip()
        body = text[m.end():]
    fragment = body.strip("\n")
    if not fragment.strip():
        raise ValueError(f"hat {name!r} has no fragment")
    if re.search(r"^ {0,3}#{1,2}(\s|$)", fragment, re.M):
        raise ValueError(f"hat {name!r}: a fragment may not contain a '#' or '##' heading")
    if "FROZEN" in fragment:
        raise ValueError(f"hat {name!r}: a fragment may not mention FROZEN markers")
    return Hat(name, description, fragment + "\n")


def load_hats(directory: str | Path | None = None) -> dict[str, Hat]:
    """Every hat in ``directory`` (default ``spec/hats``), sorted by name."""
    d = Path(directory) if directory is not None else hats_dir()
    if not d.is_dir():
        return {}
    out = {}
    for path in sorted(d.glob("*.md")):
        hat = parse_hat(path.stem, path.read_bytes().decode("utf-8"))
        out[hat.name] = hat
    return out
