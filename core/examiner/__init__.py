"""Layer 2, the dual-blind examiner (DESIGN §7, three layers).

An LLM call with purpose ``examine`` reads the spec as the writer sees it (sealed vectors
stripped) and nothing else — no code, no writer prompt or answer — and writes HTTP probes in
the contract schema for behaviour the spec states, each quoting the sentence it relies on.
The probes depend only on (spec version, examiner model): they are made once, stored
(``examiner_probes``), and run by the rig as the hidden ``examiner`` layer against every
artifact of that spec. A probe that fails on nearly every artifact is *suspect* (the examiner
may be wrong); a person can dismiss it, and it stops counting.

* :mod:`core.examiner.prompt` — the request (and its one repair);
* :mod:`core.examiner.parse` — the answer → validated probes, each refusal with its reason;
* :mod:`core.examiner.records` — storage: probe sets, dismissals, per-probe evidence;
* :mod:`core.examiner.service` — made lazily once, reused; the rig's layer; suspects.
"""
