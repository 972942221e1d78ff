"""Hidden violations: spec breaks that pass Layer 1 and only a hidden layer catches.

The rig's Layer 1 judges an artifact by its own tests and the spec's visible vectors. These
defects break a sentence of the spec that neither looks at, so ``Decision.viable`` ignores
them (like the breeding defects, ``breeding.py``, whose machinery they share): the artifact is
viable and wrong, and only the layer named in ``layer`` sees it — a sealed vector
(``spec/prime.md``'s ``sealed-vectors`` block), a probe of the sim's examiner
(``examine.py``) or of the sim's red team (``redteam.py``). The answer's own tests agree with
its (wrong) code, as for every sim defect.

Probability for spec *S*, per answer, as for the breeding defects::

    p(d) = min(0.95, base(d) x product(factors of d's rules that fire on S) x model)

present when ``U("hidden", seed, draw, d) < p``; Prime template only. On a retry a present
one stays with ``P_KEEP_OTHER`` and an absent one appears with ``P_NEW_ON_RETRY x p`` (the
diagnostics never name one: a hidden layer's failures are withheld from the writer).

``README.md`` beside this file has the table; ``tests/sim/test_sim_hidden.py`` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.llm.sim.breeding import BreedingDefect, probability as _probability
from core.llm.sim.rules import Rule
from core.llm.sim.specinfo import SpecInfo


@dataclass(frozen=True)
class HiddenDefect(BreedingDefect):
    layer: str = ""  # the one hidden layer that catches it: sealed | examiner | redteam
    caught_by: str = ""  # the sealed vector's or the sim probe's name


CATALOGUE: tuple[HiddenDefect, ...] = (
    HiddenDefect(
        name="duplicate_path_kept",
        base=0.40,
        where="parser.py",
        summary="the parser keeps a path that appears twice instead of failing with `duplicate-path`",
        shows_as="`POST /parse` answers 200 with both blocks (the spec: a 422 `duplicate-path` at "
        "the second opening line)",
        rules=(Rule("phrase", r"every\s+parse\s+error\s+code", 0.5, "asks for every parse error code tested"),),
        layer="sealed",
        caught_by="parse-rejects-duplicate-path",
    ),
    HiddenDefect(
        name="bare_parse_400",
        base=0.20,
        where="app.py",
        summary="`POST /parse` answers a body that is not a JSON object (or not JSON) with a 400 "
        "whose body has no `error` field",
        shows_as="the examiner's `parse-array-body-400` (expects `error: bad-request`) fails; the "
        "red team sends `[]` too but asks only for the status",
        rules=(Rule("phrase", r"every\s+(400|error)\s+(answers|body|bodies)", 0.4, "says what every error body holds"),),
        layer="examiner",
        caught_by="parse-array-body-400",
    ),
    HiddenDefect(
        name="text_coerced",
        base=0.40,
        where="app.py",
        summary="`POST /parse` turns a non-string `text` into a string (`str(5)`) and parses it",
        shows_as="`{\"text\": 5}` answers 422 `no-files` where the spec says 400: the red team's "
        "`rt-parse-text-non-string-400`",
        rules=(Rule("phrase", r"non-string\s+`?text", 0.5, "says a non-string text is a 400"),),
        layer="redteam",
        caught_by="rt-parse-text-non-string-400",
    ),
)

KINDS: dict[str, HiddenDefect] = {d.name: d for d in CATALOGUE}


def probabilities(spec: SpecInfo, model_factor: float = 1.0) -> dict[str, float]:
    """P(d) per hidden violation for this spec (0 off the Prime template)."""
    return {k.name: _probability(k, spec, model_factor) for k in CATALOGUE}
