"""The examiner's request: the writer-visible spec and the probe schema, nothing else.

Layout (the sim provider reads it; keep it exact)::

    system: EXAMINE_SYSTEM_PROMPT
    user:   <spec name="{name}" hash="{visible hash}">
            {the spec without its sealed-vectors block}
            </spec>
            <examine max-probes="{N}">
            {one fixed instruction paragraph}
            </examine>

The repair request (after an answer the parser could not read at all) adds the answer as the
assistant's turn and one user turn naming the problem. Both have ``purpose="examine"``;
``metadata["examine_attempt"]`` is 0 or 1.
"""

from __future__ import annotations

from core.llm.base import LLMRequest
from core.prime.prompt import spec_block
from core.spec import Spec

MAX_PROBES = 40
PROBES_FENCE = "examiner-probes"

def probe_schema(fence: str) -> str:
    """The answer format both LLM layers share (examiner, red team): one fenced JSON array
    of probes in the contract schema, each quoting the spec in ``relies_on``."""
    return f"""\
Answer with exactly one fenced block whose info string is `{fence}`, holding a JSON
array. Each element is an object:

  "name":      a short unique identifier (letters, digits, '-', '_', '.'),
  "method":    "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD",
  "path":      the request path starting with "/", query string included,
  "body":      optional request body (any JSON value; sent as JSON),
  "expect":    {{"status": int, and optionally "body" (exact JSON), "body_contains"
               (an object that must be a subset of the answer), "body_has_keys" (a list of
               keys the answer object must have)}},
  "relies_on": the sentence or table row of the specification that requires this behaviour,
               quoted exactly.

The string "$GENERATION" (as a value, or in a path) stands for the service's generation
number. Prefer probes that check things the specification's own acceptance vectors do not.
"""


EXAMINE_SYSTEM_PROMPT = """\
You are an examiner. You read a specification of an HTTP service and write black-box probes
that check behaviour the specification states. You never see the implementation; the probes
are run against every implementation of this specification, so write only what the text
requires — never what a typical implementation would happen to do.

""" + probe_schema(PROBES_FENCE)

EXAMINE_INSTRUCTION = ("Write probes for the behaviour this specification states about its HTTP "
                       "interface: status codes, error bodies, required keys, exact values where "
                       "the text fixes them. One probe per stated behaviour; quote the sentence "
                       "each relies on.")


def build_examine_request(spec: Spec, *, model: str, max_tokens: int = 8000,
                          max_probes: int = MAX_PROBES) -> LLMRequest:
    """The ``examine`` request for ``spec``, which must already be the writer-visible spec
    (:meth:`core.spec.Spec.visible`): this function refuses one that still holds sealed vectors."""
    return probe_request(spec, "examine", EXAMINE_SYSTEM_PROMPT,
                         [f'<examine max-probes="{max_probes}">\n{EXAMINE_INSTRUCTION}\n</examine>'],
                         model=model, max_tokens=max_tokens)


def probe_request(spec: Spec, purpose: str, system: str, after_spec: list[str], *, model: str,
                  max_tokens: int, **metadata: object) -> LLMRequest:
    """A probe layer's request (examine, redteam): the system prompt, the writer-visible spec
    as the cached first block, then the layer's own blocks. A spec that still holds sealed
    vectors is refused: no probe layer may see them."""
    if spec.sealed:
        raise ValueError(f"the {purpose} call sees the writer-visible spec only: strip its sealed vectors first")
    return LLMRequest(
        model=model,
        system=system,
        messages=[{"role": "user", "content": [{"type": "text", "text": spec_block(spec)},
                                               *({"type": "text", "text": t} for t in after_spec)]}],
        max_tokens=max_tokens,
        purpose=purpose,
        cache_prefix_blocks=1,
        metadata={f"{purpose}_attempt": 0, "spec_hash": spec.hash, "spec_name": spec.name, **metadata},
    )


def build_probe_repair(original: LLMRequest, answer: str, problem: str, fence: str) -> LLMRequest:
    """One more chance after an answer the parser could not read at all: the same request
    (purpose examine or redteam), the answer, and what was wrong with it. The metadata's
    ``<purpose>_attempt`` says it is the second."""
    return LLMRequest(
        model=original.model,
        system=original.system,
        messages=[*original.messages,
                  {"role": "assistant", "content": answer.rstrip() or "(empty)"},
                  {"role": "user", "content": (
                      f"Your answer could not be read: {problem}. Answer again with exactly one "
                      f"fenced `{fence}` block holding the JSON array of probes, and nothing else.")}],
        max_tokens=original.max_tokens,
        purpose=original.purpose,
        cache_prefix_blocks=original.cache_prefix_blocks,
        metadata={**original.metadata, f"{original.purpose}_attempt": 1},
    )


def build_examine_repair(original: LLMRequest, answer: str, problem: str) -> LLMRequest:
    return build_probe_repair(original, answer, problem, PROBES_FENCE)
