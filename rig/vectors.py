"""Acceptance vectors from a spec file (DESIGN §6.3), read on the host before any
artifact code runs.

Vectors are fenced code blocks whose info string is ``spec-vector``, each holding one
YAML mapping in the Contract schema, inside
``<!-- BEGIN FROZEN: acceptance-vectors -->`` … ``<!-- END FROZEN: acceptance-vectors -->``.
``spec-vector`` blocks outside that region are ignored (they are not frozen, so a
mutation could have changed them). A malformed block is an error, never silently skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from pydantic import ValidationError

from rig.schema import Contract

BEGIN = "<!-- BEGIN FROZEN: acceptance-vectors -->"
END = "<!-- END FROZEN: acceptance-vectors -->"
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class VectorError(ValueError):
    """The spec's acceptance vectors cannot be read."""


@dataclass
class VectorSet:
    vectors: list[Contract] = field(default_factory=list)
    region_found: bool = False
    warnings: list[str] = field(default_factory=list)


def _frozen_region(lines: list[str]) -> tuple[int, int] | None:
    begins = [i for i, ln in enumerate(lines) if ln.strip() == BEGIN]
    ends = [i for i, ln in enumerate(lines) if ln.strip() == END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1:
        raise VectorError(
            f"acceptance-vectors FROZEN markers must appear exactly once each "
            f"(found {len(begins)} BEGIN, {len(ends)} END)")
    if ends[0] < begins[0]:
        raise VectorError("acceptance-vectors END marker comes before its BEGIN marker")
    return begins[0], ends[0]


def _blocks(lines: list[str], start: int, stop: int) -> list[tuple[int, str, str]]:
    """(line number, info string, body) of every fenced block between start and stop."""
    out = []
    i = start
    while i < stop:
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        body: list[str] = []
        j = i + 1
        closed = False
        while j < stop:
            close = _FENCE.match(lines[j])
            if close and close.group("fence")[0] == fence[0] and len(close.group("fence")) >= len(
                    fence) and not close.group("info").strip():
                closed = True
                break
            body.append(lines[j])
            j += 1
        if not closed:
            raise VectorError(f"line {i + 1}: fenced block is not closed before the END marker")
        out.append((i + 1, info, "\n".join(body)))
        i = j + 1
    return out


def extract_vectors(text: str) -> VectorSet:
    """Parse the acceptance vectors of a spec text. Raises VectorError with a precise
    message (line numbers are 1-based) when a block is malformed."""
    lines = text.splitlines()
    region = _frozen_region(lines)
    result = VectorSet()
    if region is None:
        result.warnings.append("spec has no acceptance-vectors FROZEN block")
        return result
    result.region_found = True
    names: set[str] = set()
    for lineno, info, body in _blocks(lines, region[0] + 1, region[1]):
        if info.split()[:1] != ["spec-vector"]:
            continue
        try:
            data = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise VectorError(f"line {lineno}: spec-vector block is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise VectorError(f"line {lineno}: spec-vector block must hold one YAML mapping")
        try:
            vec = Contract.model_validate(data)
        except ValidationError as exc:
            errs = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
            raise VectorError(f"line {lineno}: spec-vector does not match the contract schema: "
                              f"{errs}") from exc
        if vec.name in names:
            raise VectorError(f"line {lineno}: duplicate spec-vector name {vec.name!r}")
        names.add(vec.name)
        result.vectors.append(vec)
    if not result.vectors:
        result.warnings.append("acceptance-vectors block holds no spec-vector blocks")
    return result


def extract_vectors_from_file(path) -> VectorSet:
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VectorError(f"spec file is not UTF-8: {exc}") from exc
    return extract_vectors(text)


# Stage timeouts a spec may set in its front matter, e.g.
#   rig-timeouts: {test: 120, build: 300}
TIMEOUT_KEYS = ("build", "test", "smoke", "start", "health")


def spec_timeouts(text: str) -> tuple[dict[str, float], list[str]]:
    """``rig-timeouts`` from the spec's YAML front matter: ({stage: seconds}, problems).
    Absent front matter or key: ({}, [])."""
    if not text.startswith("---\n"):
        return {}, []
    end = text.find("\n---", 4)
    if end < 0:
        return {}, []
    try:
        front = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        return {}, [f"front matter is not valid YAML: {exc}"]
    raw = front.get("rig-timeouts") if isinstance(front, dict) else None
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, ["rig-timeouts must be a mapping of stage: seconds"]
    out, problems = {}, []
    for key, value in raw.items():
        if key not in TIMEOUT_KEYS:
            problems.append(f"rig-timeouts: unknown stage {key!r} (known: {', '.join(TIMEOUT_KEYS)})")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 3600:
            problems.append(f"rig-timeouts.{key}: must be a number of seconds from 1 to 3600")
        else:
            out[key] = float(value)
    return out, problems


def spec_reproduce(text: str) -> tuple[dict[str, str] | None, list[str]]:
    """``reproduce`` from the spec's front matter: how an offspring is asked to breed, e.g.
        reproduce: {path: /generate, output-env: PRIME_OUTPUT_DIR, model-env: CAMBRIAN_MODEL}
    -> ({"path", "output_env", "model_env"}, problems); (None, []) when the spec declares none."""
    if not text.startswith("---\n"):
        return None, []
    end = text.find("\n---", 4)
    if end < 0:
        return None, []
    try:
        front = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        return None, [f"front matter is not valid YAML: {exc}"]
    raw = front.get("reproduce") if isinstance(front, dict) else None
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, ["reproduce must be a mapping: {path, output-env, model-env}"]
    out, problems = {}, []
    for key, attr, default in (("path", "path", None), ("output-env", "output_env", None),
                               ("model-env", "model_env", "CAMBRIAN_MODEL")):
        value = raw.get(key, default)
        if not isinstance(value, str) or not value:
            problems.append(f"reproduce.{key}: required, a non-empty string")
        else:
            out[attr] = value
    if "path" in out and not out["path"].startswith("/"):
        problems.append("reproduce.path: must start with '/'")
    for key in raw:
        if key not in ("path", "output-env", "model-env", "spec"):
            problems.append(f"reproduce: unknown key {key!r}")
    if raw.get("spec", "self") != "self":
        problems.append("reproduce.spec: only 'self' (the offspring breeds from its own spec copy)")
    return (out if not problems else None), problems
