"""Where Cambrian keeps its runtime state (DESIGN §4: `data/` in a checkout)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cambrian_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--home beats CAMBRIAN_HOME beats the checkout's data/ folder."""
    raw = explicit or os.environ.get("CAMBRIAN_HOME")
    home = Path(raw).expanduser() if raw else REPO_ROOT / "data"
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def db_path(home: Path) -> Path:
    return home / "cambrian.db"


def spec_dir() -> Path:
    return REPO_ROOT / "spec"
