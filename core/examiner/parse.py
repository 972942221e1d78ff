"""The examiner's answer → validated probes. A bad probe is dropped with its reason; only an
answer with no readable probe at all is an error (:class:`ExamineAnswerError`).

A probe is kept when it is an object with only known keys, matches the contract schema
(:class:`rig.schema.Contract`), has a usable unique name and quotes, in ``relies_on``, text
that really is in the spec it was written from (compared without markdown emphasis, case and
runs of white space) — a probe that cannot point at the spec is the examiner's invention.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from core.examiner.prompt import MAX_PROBES, PROBES_FENCE
from rig.schema import Contract

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_FENCE_RE = re.compile(r"^(`{3,}|~{3,})[ \t]*([\w-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
_CONTRACT_KEYS = frozenset(Contract.model_fields)
_EXPECT_KEYS = frozenset(Contract.model_fields["expect"].annotation.model_fields)  # type: ignore[union-attr]
PROBE_KEYS = _CONTRACT_KEYS | {"relies_on", "description"}
MIN_QUOTE = 8


class ExamineAnswerError(ValueError):
    """The answer holds no readable probe at all."""


@dataclass
class ParsedProbes:
    probes: list[dict[str, Any]] = field(default_factory=list)  # contract dict + relies_on
    dropped: list[dict[str, Any]] = field(default_factory=list)  # {index, name, reason}


def normalise(text: str) -> str:
    """Lower case, markdown emphasis and quotes gone, white space collapsed."""
    text = re.sub(r"[`*_\"'“”‘’]", "", text.lower())
    return " ".join(text.split())


def _array_text(text: str, fence: str = PROBES_FENCE) -> str:
    fences = [(info.lower(), body) for _, info, body in _FENCE_RE.findall(text)]
    for want in (fence, "json"):
        for info, body in fences:
            if info == want:
                return body
    stripped = text.strip()
    if stripped.startswith("["):
        return stripped
    raise ExamineAnswerError(f"no `{fence}` block and no bare JSON array in the answer")


def parse_probes(text: str, spec_text: str, *, max_probes: int = MAX_PROBES,
                 fence: str = PROBES_FENCE) -> ParsedProbes:
    """The valid probes of an examine (or, with its ``fence``, a red-team) answer written
    from ``spec_text``."""
    try:
        data = json.loads(_array_text(text, fence))
    except ValueError as exc:
        raise ExamineAnswerError(f"the probe block is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ExamineAnswerError(f"the probe block is a JSON {type(data).__name__}, not an array")
    spec_norm = normalise(spec_text)
    out = ParsedProbes()
    seen: set[str] = set()
    for i, raw in enumerate(data):
        name = raw.get("name") if isinstance(raw, dict) else None
        why = _problem(raw, spec_norm, seen)
        if why is None and len(out.probes) >= max_probes:
            why = f"more than {max_probes} probes"
        if why is not None:
            out.dropped.append({"index": i, "name": name if isinstance(name, str) else None, "reason": why})
            continue
        probe = Contract.model_validate({k: v for k, v in raw.items() if k in _CONTRACT_KEYS}).to_wire()
        probe["relies_on"] = " ".join(raw["relies_on"].split())
        out.probes.append(probe)
        seen.add(raw["name"])
    if not out.probes:
        first = out.dropped[0]["reason"] if out.dropped else "the array is empty"
        raise ExamineAnswerError(f"no valid probe among {len(data)} ({first})")
    return out


def _problem(raw: Any, spec_norm: str, seen: set[str]) -> str | None:
    if not isinstance(raw, dict):
        return f"a JSON {type(raw).__name__}, not an object"
    unknown = sorted(set(raw) - PROBE_KEYS)
    if unknown:
        return f"unknown keys {unknown}"
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        return "name must be 1-80 letters, digits, '-', '_' or '.'"
    if name in seen:
        return f"duplicate name {name!r}"
    expect = raw.get("expect")
    if isinstance(expect, dict) and set(expect) - _EXPECT_KEYS:
        return f"unknown expect keys {sorted(set(expect) - _EXPECT_KEYS)}"
    try:
        Contract.model_validate({k: v for k, v in raw.items() if k in _CONTRACT_KEYS})
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"not a contract: {'.'.join(map(str, err['loc']))}: {err['msg']}"
    quote = raw.get("relies_on")
    if not isinstance(quote, str) or len(normalise(quote)) < MIN_QUOTE:
        return "relies_on must quote the spec sentence the probe relies on"
    if normalise(quote) not in spec_norm:
        return "relies_on is not text of the spec"
    return None


def rig_probe(probe: dict[str, Any]) -> dict[str, Any]:
    """A stored probe as the rig runs it (the quote stays with the record)."""
    return {k: v for k, v in probe.items() if k in _CONTRACT_KEYS}
