"""Layer 3, the red team (DESIGN §7, three layers; docs/redteam.md).

An LLM call with purpose ``redteam`` reads the writer-visible spec (sealed vectors stripped)
AND one viable artifact's code, and proposes probes in the examiner's schema that should
break this implementation while being required by the spec, each quoting the sentence it
relies on. The rig runs them against the same artifact in a fresh run (the ``redteam``
probe layer); a confirmed violation is a kept probe (its quote is spec text) that the
artifact fails. ``redteam_score = 1 − confirmed / proposed``.

* :mod:`core.redteam.prompt` — the request (spec + bounded code) and its one repair;
* :mod:`core.redteam.service` — the call (parsed by core.examiner.parse), the score block,
  the threshold rule and the per-draw sample.
"""
