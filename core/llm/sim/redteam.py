"""The sim's red team (purpose ``redteam``): attack probes derived from the spec it was shown.

Offline and deterministic: the same spec text gives the same probes (the artifact's code is
read only to say how much was seen). Like the sim's examiner it reads the contract table and
the prose — never a template of a known genome — but it looks for the edges where a writer
slips, each probe quoting the row or sentence that requires the expectation:

* "a known path with the wrong method answers 405": for each of the first three paths, one
  of PUT, DELETE, PATCH (a different one per path) that no row lists for it, expecting 405;
* "any other path answers 404": a known GET path with a segment appended, and the same path
  in upper case, expecting 404 (a router that matches prefixes or ignores case fails them);
* a POST with a 400 row whose prose names a *missing* field (body ``{}``), a body that is
  *not a JSON object* (``[]`` and ``"text"``), or a field that is *empty* (``""``),
  *non-string* (``5``) or *negative* (``-1``), expecting 400;
* a GET whose prose says an *empty* query parameter is fine: that parameter empty, expecting
  the 2xx row's status (and, when the sentence says "empty string", every ``S`` key of the
  row's body equal to ``""``).

At most ``MAX`` probes. No probe is deliberately wrong (the sim's examiner covers that); a
probe can still fail a correct artifact where the spec leaves room, which is what a red team
score below 1 on a correct artifact means.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.llm.sim.examine import _about, _sentence, contract_index

MAX = 12
_ADJ = r"(?:missing|empty|non-string|negative)"
_FIELD_RE = re.compile(rf"({_ADJ}(?:\s+or\s+{_ADJ})*)\s+`([A-Za-z_][\w-]*)`", re.I)
_S_KEY_RE = re.compile(r'"([A-Za-z0-9_-]+)"\s*:\s*S\b')
_BAD_VALUE = {"empty": "", "non-string": 5, "negative": -1}


def redteam_answer(spec_text: str, artifact_text: str) -> str:
    probes = attack_probes(spec_text)
    return (f"(simulated) Red-team probes for this implementation ({artifact_text.count('<file ')} "
            "file(s) read).\n\n```redteam-probes\n" + json.dumps(probes, indent=1) + "\n```\n")


def attack_probes(spec_text: str) -> list[dict[str, Any]]:
    text, rows, blocks, by_path = contract_index(spec_text)
    probes: list[dict[str, Any]] = []

    def add(name: str, method: str, path: str, status: int, relies_on: str, body: Any = None,
            contains: dict[str, Any] | None = None) -> None:
        if len(probes) >= MAX or any(p["name"] == name for p in probes):
            return
        p: dict[str, Any] = {"name": name, "method": method, "path": path}
        if body is not None:
            p["body"] = body
        p["expect"] = {"status": status, **({"body_contains": contains} if contains else {})}
        p["relies_on"] = relies_on
        probes.append(p)

    def slug(path: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"

    plain = [p for p in sorted(by_path) if "{" not in p]
    quote = _sentence(text, "wrong method answers 405")
    if quote:
        for i, path in enumerate(plain[:3]):  # one method per path, a different one each time
            methods = ("PUT", "DELETE", "PATCH")
            other = next((m for m in methods[i % 3:] + methods[:i % 3] if m not in by_path[path]), None)
            if other:
                add(f"rt-{slug(path)}-{other.lower()}-405", other, path, 405, quote)
    quote = _sentence(text, "other path answers 404")
    gets = [p for p in plain if "GET" in by_path[p] and p != "/"]
    if quote and gets:
        add(f"rt-{slug(gets[0])}-suffix-404", "GET", gets[0].rstrip("/") + "/redteam", 404, quote)
        if gets[0].upper() != gets[0]:
            add(f"rt-{slug(gets[0])}-upper-404", "GET", gets[0].upper(), 404, quote)
    for method, path, status, body, raw in rows:
        about = _about(blocks, method, path)
        if not about:
            continue
        if method == "POST" and status == 400:
            q = _sentence(about, "missing")
            if q:
                add(f"rt-{slug(path)}-empty-object-400", method, path, 400, q, body={})
            q = _sentence(about, "not a JSON object")
            if q:
                add(f"rt-{slug(path)}-array-400", method, path, 400, q, body=[])
                add(f"rt-{slug(path)}-string-400", method, path, 400, q, body="text")
            for q in filter(None, [_sentence(about, "empty"), _sentence(about, "non-string"),
                                   _sentence(about, "negative")]):
                for m in _FIELD_RE.finditer(q):
                    for adj in re.split(r"\s+or\s+", m.group(1).lower()):
                        if adj in _BAD_VALUE:
                            add(f"rt-{slug(path)}-{m.group(2)}-{adj}-400", method, path, 400, q,
                                body={m.group(2): _BAD_VALUE[adj]})
        elif method == "GET" and 200 <= status < 300:
            query = re.search(rf"`GET {re.escape(path)}\?([A-Za-z_][\w-]*)=[^`\s]*`", text)
            q = _sentence(about, "empty one") or _sentence(about, "empty value")
            if query and q:
                contains = ({k: "" for k in _S_KEY_RE.findall(body)} if "empty string" in q.lower() else None)
                add(f"rt-{slug(path)}-empty-{query.group(1)}", method, f"{path}?{query.group(1)}=",
                    status, q, contains=contains or None)
    return probes
