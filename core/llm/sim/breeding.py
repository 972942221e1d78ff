"""Breeding defects: mistakes in a Prime's generation loop that only reproduction reveals.

The rig judges an offspring Prime by its build, its own test suite (which talks to a fake
model, never the network) and its HTTP vectors (``POST /generate`` is only probed for its
400 on a bad body). None of that runs the real model client or writes to
``PRIME_OUTPUT_DIR``, so a Prime can be viable and still unable to breed. These defects
live exactly there: the Anthropic client class, the prompt assembly, the answer's content
blocks, and ``write_artifact``. They never touch what the tests and vectors see, so
``Decision.viable`` ignores them: a Prime that has one is viable-but-infertile, and only a
real ``POST /generate`` through the LLM gateway (the rig's reproduction step) shows it.

Probability for spec *S*::

    p(d) = min(0.95, base(d) x product(factors of d's rules that fire on S) x model)

(no complexity or diligence factor: the loop is the same size for every Prime). A breeding
defect applies only to the Prime template (the only one with a generation loop). Draws use
common random numbers like the defects: present when ``U("breeding", seed, draw, d) < p``.
On an informed retry the rig's diagnostics never name one (the failed attempt was not
viable, so it never bred): a present one stays with ``P_KEEP_OTHER``, an absent one appears
with ``P_NEW_ON_RETRY x p``.

``README.md`` beside this file has the table; ``tests/sim/test_sim_provider.py`` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.llm.sim.rules import Rule
from core.llm.sim.specinfo import SpecInfo, template_kind

B_MAX = 0.95
LOOP = r"generation loop"


@dataclass(frozen=True)
class BreedingDefect:
    name: str
    base: float
    where: str  # the module of the Prime it lives in
    summary: str  # what goes wrong when the Prime breeds
    shows_as: str  # what the reproduction record says
    rules: tuple[Rule, ...]
    variants: tuple[str, ...] = ("",)


CATALOGUE: tuple[BreedingDefect, ...] = (
    BreedingDefect(
        name="swapped_roles",
        base=0.10,
        where="llm.py",
        summary="the Anthropic client sends the spec as the system prompt and the system prompt "
        "as the user message",
        shows_as="the model is asked for nothing it can build; both answers hold no file block: "
        "`/generate` answers 422 `no-files` (stage reproduce)",
        rules=(
            Rule("phrase", r"system\s+message\s+is\s+the\s+system\s+prompt", 0.5,
                 "says what the system message is"),
            Rule("no-section", LOOP, 2.0, "no Generation Loop section"),
        ),
    ),
    BreedingDefect(
        name="prompt_without_spec",
        base=0.06,
        where="generator.py",
        summary="the prompt assembly forgets the spec: the user message is a one-line task",
        shows_as="422 `no-files` after the repair call (stage reproduce)",
        rules=(
            Rule("phrase", r"user\s+message\s+is\s+the\s+(whole\s+)?spec", 0.5, "says the user message is the spec"),
            Rule("no-section", LOOP, 2.0, "no Generation Loop section"),
        ),
    ),
    BreedingDefect(
        name="content_blocks",
        base=0.12,
        where="llm.py",
        summary="the answer's content blocks are mishandled: indexed like dicts "
        "(`content[0][\"text\"]`, a TypeError) or turned into their repr (`str(content)`)",
        shows_as="`/generate` answers 500 (subscript) or 422 `no-files` (repr) (stage reproduce)",
        rules=(
            Rule("phrase", r"content\s+blocks?", 0.5, "names the answer's content blocks"),
            Rule("no-section", LOOP, 1.5, "no Generation Loop section"),
        ),
        variants=("subscript", "repr"),
    ),
    BreedingDefect(
        name="manifest_not_written",
        base=0.10,
        where="generator.py",
        summary="`write_artifact` writes the files to `$PRIME_OUTPUT_DIR/gen-N` but not "
        "`manifest.json` (the HTTP answer still carries the manifest)",
        shows_as="the rig finds no manifest.json in the output folder (stage reproduce)",
        rules=(
            Rule("phrase", r"write\s+the\s+files\s+and\s+`?manifest\.json`?", 0.5,
                 "says manifest.json is written with the files"),
        ),
    ),
    BreedingDefect(
        name="wrong_spec_copy",
        base=0.08,
        where="generator.py",
        summary="`write_artifact` writes the spec copy without its front matter (the manifest "
        "hashed the exact copy)",
        shows_as="the grand-offspring fails the manifest stage: artifact hash mismatch "
        "(stage offspring:manifest)",
        rules=(
            Rule("phrase", r"exact\s+spec\s+text|spec\s+text\s+exactly|byte\s+for\s+byte", 0.5,
                 "says the spec copy is exact"),
        ),
    ),
)

KINDS: dict[str, BreedingDefect] = {d.name: d for d in CATALOGUE}


def applies(spec: SpecInfo) -> bool:
    """Only the Prime template has a generation loop to get wrong."""
    return template_kind(spec) == "prime"


def probability(kind: BreedingDefect, spec: SpecInfo, model_factor: float = 1.0) -> float:
    key = ("breeding", kind.name, model_factor)
    if key not in spec.memo:
        if not applies(spec):
            p = 0.0
        else:
            p = kind.base
            for rule in kind.rules:
                if rule.fires(spec):
                    p *= rule.factor
            p = min(B_MAX, p * model_factor)
        spec.memo[key] = p
    return spec.memo[key]


def probabilities(spec: SpecInfo, model_factor: float = 1.0) -> dict[str, float]:
    return {k.name: probability(k, spec, model_factor) for k in CATALOGUE}


def p_sterile(spec: SpecInfo, model_factor: float = 1.0) -> float:
    """P(a viable Prime has at least one breeding defect): it cannot breed whatever its
    grand-offspring would have been."""
    q = 1.0
    for p in probabilities(spec, model_factor).values():
        q *= 1 - p
    return 1 - q
