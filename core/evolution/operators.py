"""Mutation operators: from the incumbent and a point of the search space, one variant.

Operators (the ``operator`` dimension):

``rewrite``    an LLM rewrites one section (``section``) with an ``intent``: add guidance,
               remove the least useful sentence, or rephrase. The answer's section body
               replaces the old one through ``core.spec.replace_section`` (FROZEN-safe).
``amend``      inserts a distiller amendment (``amendment``: its index in the list frozen
               at run start) into the amendment's own section: an accepted one, or a
               proposal nobody has reviewed yet (screened like any other variant).
``crossover``  copies one whole section from a good earlier variant of the run (``donor``:
               rank among evaluated variants, best first; the last one when there are fewer)
               into the incumbent — the
               ``section`` dimension when the donor's differs there, else the first section
               (in spec order) where the two differ.
``hat``        appends a system-prompt overlay (``hat``) to the spec's designated
               system-prompt section.
``model``      keeps the spec and runs it with another model (``model``).

Dimensions an operator does not use are ignored. Every variant then goes through
:func:`check_variant`: a variant identical to its parent is a no-op, and any grammar issue
(``core.spec.validate_variant`` against the run's base spec: FROZEN blocks byte-identical
and paired, required sections present, no duplicated heading, same contract) rejects it
with the reason. Rejected variants are recorded, never run.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Mapping, Sequence

from core.evolution.hats import Hat
from core.spec import (
    SpecError,
    insert_into_section,
    parse_spec,
    replace_section,
    spec_hash,
    validate_variant,
)

__all__ = [
    "INTENTS",
    "OPERATORS",
    "AmendmentRef",
    "Donor",
    "LLMRewriter",
    "Parent",
    "Variant",
    "check_variant",
    "make_variant",
    "mutable_sections",
]

OPERATORS = ("rewrite", "amend", "crossover", "hat", "model")

# Instructions sent with a rewrite. Each names its intent in plain words (a real model reads
# them; the sim provider keys its operation on the verbs), and never uses another intent's verb.
INTENTS: dict[str, str] = {
    "add": (
        "Add one or two concrete sentences of guidance to this section that would help a "
        "code-writing model get the implementation right on the first attempt. Keep every "
        "existing requirement, table, code block and FROZEN block exactly as it is."
    ),
    "remove": (
        "Remove the least useful sentence or list item of this section to make it shorter. "
        "Keep every table, code block and FROZEN block exactly as it is."
    ),
    "rephrase": (
        "Rephrase this section for clarity without changing what it requires. Keep every "
        "table, code block and FROZEN block exactly as it is."
    ),
}

RewriteFn = Callable[[str, str, str, int], "Awaitable[str] | str"]


@dataclass(frozen=True)
class Parent:
    """The spec a mutation starts from (the incumbent) and the model it runs with."""

    text: str
    model: str

    @property
    def hash(self) -> str:
        return spec_hash(self.text)


@dataclass(frozen=True)
class AmendmentRef:
    id: int | None
    section: str
    text: str
    status: str = "accepted"  # or "pending": a distiller proposal nobody has reviewed yet
    evidence: Mapping[str, Any] | None = None

    def describe(self) -> str:
        if self.status != "pending":
            return f"amendment {self.id}" if self.id is not None else "amendment"
        ev = self.evidence or {}
        why = f": {ev.get('feature')} {ev.get('direction')}, q={ev.get('q')}" if ev.get("feature") else ""
        return f"proposal {self.id}{why}"


@dataclass(frozen=True)
class Donor:
    """An evaluated variant of the run that crossover may copy sections from."""

    text: str
    rate: float
    index: int


@dataclass(frozen=True)
class Variant:
    operator: str
    text: str
    model: str
    detail: str
    rejected_reason: str | None = None
    noop: bool = False

    @property
    def ok(self) -> bool:
        return self.rejected_reason is None

    @property
    def hash(self) -> str:
        return spec_hash(self.text)

    def reject(self, reason: str, noop: bool = False) -> "Variant":
        """No-op reasons start with ``"no-op: "`` (the state fold scores them as no gain)."""
        if noop and not reason.startswith("no-op: "):
            reason = "no-op: " + reason
        return replace(self, rejected_reason=reason, noop=noop)


# --- sections -----------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", re.S | re.M)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Any:
    """``parse_spec`` memoised on the text (specs are immutable; parsing Prime costs ~20 ms)."""
    return parse_spec(text)


def _prose(body: str, frozen_texts: Sequence[str]) -> str:
    for t in frozen_texts:
        body = body.replace(t, "")
    return _FENCE_RE.sub("", body)


def mutable_sections(text: str) -> list[str]:
    """``##`` sections with some prose outside FROZEN blocks and code fences, in order."""
    spec = _parsed(text)
    frozen = [b.text for b in spec.frozen]
    return [s.name for s in spec.sections if s.level == 2 and _prose(s.body, frozen).strip()]


def _section_body(text: str, name: str) -> str | None:
    sec = _parsed(text).section(name)
    return None if sec is None else sec.body


def _keep_sealed(text: str, section: str, body: str) -> str:
    """The rewriter never saw the section's sealed-vectors block: put it back, unchanged, at
    the end of the new body (where the shipped specs keep it)."""
    from core.spec import SEALED_BLOCK

    spec = _parsed(text)
    block = spec.frozen_block(SEALED_BLOCK)
    sec = spec.section(section)
    if block is None or sec is None or block.text not in sec.body or block.text in body:
        return body
    return body.rstrip("\r\n") + "\n\n" + block.text


# --- the LLM rewrite ---------------------------------------------------------------------------


class LLMRewriter:
    """``rewrite(spec_text, section, instructions, seed) -> new body`` through a provider
    (wrap it in ``LedgeredProvider`` so the call is in the ledger)."""

    def __init__(self, provider: Any, model: str, *, max_tokens: int = 8000) -> None:
        self.provider = provider
        self.model = model
        self.max_tokens = max_tokens

    async def __call__(self, spec_text: str, section: str, instructions: str, seed: int) -> str:
        from core.prime.prompt import build_mutate_request, parse_section_answer

        # the sealed vectors are never shown to an LLM (the writer's ancestors included)
        req = build_mutate_request(_parsed(spec_text).visible(), section, instructions, model=self.model,
                                   seed=seed, max_tokens=self.max_tokens)
        resp = await self.provider.complete(req)
        return parse_section_answer(resp.text, section)


async def _call(fn: RewriteFn, *args: Any) -> str:
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out  # type: ignore[return-value]


# --- operators ------------------------------------------------------------------------------


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def make_variant(
    point: Mapping[str, Any],
    parent: Parent,
    *,
    system_section: str,
    hats: Mapping[str, Hat],
    amendments: Sequence[AmendmentRef],
    donors: Sequence[Donor],
    rewrite: RewriteFn | None,
    seed: int,
) -> Variant:
    """Apply the point's operator to ``parent`` (no validation: see :func:`check_variant`)."""
    op = point["operator"]
    keep = Variant(op, parent.text, parent.model, "")
    try:
        if op == "rewrite":
            section, intent = point["section"], point["intent"]
            detail = f"rewrite '{section}' ({intent})"
            if rewrite is None:
                return replace(keep, detail=detail).reject("no LLM provider for rewrites")
            try:
                body = await _call(rewrite, parent.text, section, INTENTS[intent], seed)
            except SpecError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed call is a rejected variant
                return replace(keep, detail=detail).reject(
                    f"rewrite failed: {type(exc).__name__}: {_short(exc)}")
            body = _keep_sealed(parent.text, section, body)
            return Variant(op, replace_section(parent.text, section, body), parent.model, detail)
        if op == "amend":
            k = int(point["amendment"])
            if not amendments or k >= len(amendments):
                return replace(keep, detail=f"amend #{k}").reject("no accepted amendment at that index")
            a = amendments[k]
            detail = f"amend '{a.section}' ({a.describe()})" if a.id is not None or a.status == "pending" \
                else f"amend '{a.section}'"
            if a.text.strip() in (_section_body(parent.text, a.section) or ""):
                return replace(keep, detail=detail).reject("amendment already in the parent", noop=True)
            return Variant(op, insert_into_section(parent.text, a.section, a.text), parent.model, detail)
        if op == "crossover":
            rank = int(point["donor"])
            if not donors:
                return replace(keep, detail=f"crossover donor #{rank}").reject(
                    "no donor yet (no evaluated variant other than the incumbent)")
            donor = donors[min(rank, len(donors) - 1)]  # fewer donors than ranks: the last one
            wanted = point["section"]
            mine, theirs = _parsed(parent.text), _parsed(donor.text)
            differing = [s.name for s in mine.sections
                         if (o := theirs.section(s.name)) is not None and o.body != s.body]
            if not differing:
                return replace(keep, detail=f"crossover with observation {donor.index}").reject(
                    "donor has no section that differs from the parent", noop=True)
            section = wanted if wanted in differing else differing[0]
            body = theirs.section(section).body  # type: ignore[union-attr]
            detail = f"crossover '{section}' from observation {donor.index}"
            return Variant(op, replace_section(parent.text, section, body), parent.model, detail)
        if op == "hat":
            name = point["hat"]
            hat = hats.get(name)
            detail = f"hat '{name}'"
            if hat is None:
                return replace(keep, detail=detail).reject(f"no hat named {name!r}")
            if hat.fragment.strip() in (_section_body(parent.text, system_section) or ""):
                return replace(keep, detail=detail).reject("the parent already wears this hat", noop=True)
            return Variant(op, insert_into_section(parent.text, system_section, hat.fragment),
                           parent.model, detail)
        if op == "model":
            model = point["model"]
            return Variant(op, parent.text, model, f"model {parent.model} → {model}")
        return keep.reject(f"unknown operator {op!r}")
    except SpecError as exc:
        # replace_section / insert_into_section refuse FROZEN changes, new headings, breakage
        detail = {"rewrite": f"rewrite '{point.get('section')}' ({point.get('intent')})"}.get(op, op)
        return replace(keep, detail=detail).reject(f"edit refused: {_short(exc)}")


def check_variant(base_text: str, parent: Parent, v: Variant) -> Variant:
    """No-op and grammar gate. Returns ``v`` unchanged when it may be run."""
    if not v.ok:
        return v
    if v.text == parent.text and v.model == parent.model:
        return v.reject("no change: the variant is identical to its parent", noop=True)
    issues = validate_variant(base_text, v.text)
    if issues:
        more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
        return v.reject(f"grammar: {issues[0]} [{issues[0].code}]{more}")
    return v
