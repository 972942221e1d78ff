"""Which specs a campaign or a run can start from: the chooser's entries, and a typed path.

Stored versions are immutable and were checked when stored; files in the spec folder are
checked here (``spec check``): a file that fails is listed, marked, and refused, never
offered as if it were a shipped genome.
"""

from __future__ import annotations

from pathlib import Path

from core.app.models import CampaignView, SpecChoice, SpecVersionView, short_hash

ORIGIN_ORDER = {"human": 0, "import": 1, "amendment": 2, "mutation": 3}


def spec_folder_files(spec_dir: Path | None) -> list[Path]:
    if spec_dir is None or not spec_dir.is_dir():
        return []
    return sorted(p for p in spec_dir.glob("*.md") if p.name.lower() != "readme.md")


def first_problem(text: str) -> str | None:
    from core.spec import check_spec

    issues = check_spec(text)
    if not issues:
        return None
    i = issues[0]
    more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"line {i.line}: {i.message}{more}"


def file_choice(path: Path) -> SpecChoice:
    from rig.hashing import sha256_hex

    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return SpecChoice(str(path), path.stem, "file", "file", None, str(path), f"cannot read: {exc}")
    problem = first_problem(text)
    kind = "file" if problem else "shipped"
    h = sha256_hex(data)
    return SpecChoice(h, path.stem, kind, kind, h, str(path), problem)


def spec_choices(stored: list[SpecVersionView], spec_dir: Path | None) -> list[SpecChoice]:
    """Shipped genomes, then stored versions (people's first, then amendments and
    mutations, newest first), then files of the spec folder that fail ``spec check``."""
    files = [file_choice(p) for p in spec_folder_files(spec_dir)]
    file_hashes = {c.hash for c in files if c.usable}
    shipped = [c for c in files if c.usable]
    broken = [c for c in files if not c.usable]
    versions = [v for v in stored if v.origin != "shipped" and v.hash not in file_hashes]
    versions.sort(key=lambda v: (ORIGIN_ORDER.get(v.origin, 9), _neg(v.created_at)))
    stored_choices = [SpecChoice(v.hash, v.title if v.label else short_hash(v.hash), "stored", v.origin, v.hash)
                      for v in versions]
    return shipped + stored_choices + broken


def _neg(stamp: str) -> tuple:
    # newest first within an origin: invert the ISO string's characters' order
    return tuple(-ord(ch) for ch in stamp or "")


def default_choice(choices: list[SpecChoice], campaign: CampaignView | None) -> SpecChoice | None:
    """What the form starts with: the selected campaign's spec when a person started that
    campaign, else the first shipped genome — never silently an evolution's mutant."""
    usable = [c for c in choices if c.usable]
    if campaign is not None and not campaign.evolution_child:
        hit = next((c for c in usable if c.hash == campaign.spec_hash), None)
        if hit is not None:
            return hit
    return next((c for c in usable if c.kind == "shipped"), usable[0] if usable else None)


def read_spec_file(raw: str, base: Path | None = None) -> tuple[str, str]:
    """(text, label) of a typed spec path, or ValueError saying what is wrong with it."""
    text_path = (raw or "").strip()
    if not text_path:
        raise ValueError("type a spec file path")
    path = Path(text_path).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    problem = first_problem(text)
    if problem:
        raise ValueError(f"fails spec check: {problem} (`cambrian spec check {path}` lists all)")
    return text, path.stem


def check_spec_text(text: str) -> dict:
    """``cambrian spec check``: {ok, issues: [{line, code, message}]} and, when ok, what the
    spec holds ({sections, frozen, vectors, sealed, hash}; ``sealed``: the sealed vectors,
    checked like the visible ones and never shown to the writer)."""
    from core.spec import check_spec, parse_spec

    issues = check_spec(text)
    out: dict = {"ok": not issues,
                 "issues": [{"line": i.line, "code": i.code, "message": i.message} for i in issues]}
    if not issues:
        spec = parse_spec(text)
        out.update(sections=len(spec.sections), frozen=len(spec.frozen), vectors=len(spec.vectors),
                   sealed=len(spec.sealed), hash=spec.hash)
    return out
