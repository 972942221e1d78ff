"""The sim's README table, as its tests read it."""

from __future__ import annotations

from core.home import REPO_ROOT


def readme_row(name: str) -> str | None:
    """The table row of core/llm/sim/README.md that documents ``name`` (a defect, a habit…)."""
    readme = (REPO_ROOT / "core" / "llm" / "sim" / "README.md").read_text(encoding="utf-8")
    return next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), None)
