"""The sim's examiner (purpose ``examine``): probes derived from the spec it was shown.

It reads what a careful reader of any spec would read, never a template of a known genome:

* the contract table (``| method | path | status | body |``): a GET that answers 2xx is
  probed for its status and the keys (and fixed string values) of the body shown in its row —
  with the query string the prose shows for that path (``GET /reverse?text=S``), if any; a GET
  that also has a 400 row is probed without that query string; a POST whose 2xx body is "the
  request body, unchanged" is probed with a small JSON body that must come back equal; a POST
  with a 400 row whose prose calls a *missing* field (or a body that is *not a JSON object*)
  a 400 is probed with ``{}`` (or ``[]``);
* the prose: "any other path answers 404" gives an unknown-path probe; "a known path with the
  wrong method answers 405" gives up to two probes with a method no row lists for that path.

Each probe quotes its table row or sentence in ``relies_on``. **Wrong probes:** with
probability ``WRONG_P`` per probe (drawn from a hash of the examiner model and the spec text,
so a spec version and model always get the same set) the expected status is replaced by a
plausible wrong one (200→201, 400→422, 404→400, 405→404). Such a probe fails on every
artifact, correct or not — what suspect detection is there to find.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

WRONG_P = 0.15
WRONG_STATUS = {200: 201, 201: 200, 400: 422, 404: 400, 405: 404, 422: 400}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
ECHO_BODY = {"examiner": [1, "two", None], "nested": {"ok": True}}

_HEADING_RE = re.compile(r"^#{1,6}\s")
_BULLET_RE = re.compile(r"^\s*[-*]\s")
_KEY_RE = re.compile(r'"([A-Za-z0-9_-]+)"\s*:')
_FIXED_RE = re.compile(r'"([A-Za-z0-9_-]+)"\s*:\s*"([^"]*)"')
_FRONT_RE = re.compile(r"\A---[ \t]*\n.*?\n---[ \t]*\n", re.S)
_FROZEN_RE = re.compile(r"<!--\s*BEGIN FROZEN:\s*([\w.-]+)\s*-->.*?<!--\s*END FROZEN:\s*\1\s*-->", re.S)


def examine_answer(spec_text: str, model: str) -> str:
    """The examine answer for this spec: one ``examiner-probes`` block."""
    probes = derive_probes(spec_text)
    for p in probes:
        if _draw(model, spec_text, p["name"]) < WRONG_P:
            p["expect"]["status"] = WRONG_STATUS.get(p["expect"]["status"], 418)
    return ("(simulated) Probes for the behaviour the specification states.\n\n"
            "```examiner-probes\n" + json.dumps(probes, indent=1) + "\n```\n")


def _draw(model: str, spec_text: str, name: str) -> float:
    digest = hashlib.sha256(f"examine|{model}|{name}|{spec_text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _rows(text: str) -> list[tuple[str, str, int, str, str]]:
    """(method, path, status, body cell, raw line) of every contract-table row."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        head = [c.strip().lower() for c in lines[i].strip().strip("|").split("|")]
        if head[:3] == ["method", "path", "status"]:
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip().strip("`").strip() for c in lines[i].strip().strip("|").split("|")]
                digits = re.sub(r"\D", "", cells[2])[:3] if len(cells) >= 3 else ""
                if len(cells) >= 3 and cells[0].upper() in METHODS and digits:
                    out.append((cells[0].upper(), cells[1], int(digits), "|".join(cells[3:]).strip(),
                                lines[i].strip()))
                i += 1
            continue
        i += 1
    return out


def _blocks(text: str) -> list[str]:
    """The text cut at headings and bullets: each piece says something about one thing."""
    out: list[list[str]] = [[]]
    for line in text.splitlines():
        if _HEADING_RE.match(line) or _BULLET_RE.match(line):
            out.append([])
        out[-1].append(line)
    return ["\n".join(b) for b in out if b and b[0].strip()]


def _sentence(text: str, phrase: str) -> str | None:
    """The sentence of ``text`` holding ``phrase`` (case-insensitive), as written."""
    for para in re.split(r"\n[ \t]*\n", text):
        if para.lstrip().startswith("|"):
            continue  # a table is not a sentence
        for s in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
            if phrase.lower() in s.lower():
                return s.strip()
    return None


def _about(blocks: list[str], method: str, path: str) -> str:
    """The prose blocks whose first line names ``METHOD /path``."""
    want = f"{method} {path}".lower()
    return "\n".join(b for b in blocks if want in b.splitlines()[0].replace("`", "").lower())


def contract_index(spec_text: str) -> tuple[str, list, list[str], dict[str, dict[str, set[int]]]]:
    """What the sim's examiner and red team read of a spec: its text without front matter and
    FROZEN blocks, the contract table's rows, the prose blocks, and path -> method -> statuses."""
    text = _FROZEN_RE.sub("", _FRONT_RE.sub("", spec_text, count=1))
    rows = _rows(text)
    by_path: dict[str, dict[str, set[int]]] = {}
    for method, path, status, _b, _raw in rows:
        by_path.setdefault(path, {}).setdefault(method, set()).add(status)
    return text, rows, _blocks(text), by_path


def derive_probes(spec_text: str) -> list[dict[str, Any]]:
    text, rows, blocks, by_path = contract_index(spec_text)
    probes: list[dict[str, Any]] = []

    def add(name: str, method: str, path: str, expect: dict[str, Any], relies_on: str,
            body: Any = None) -> None:
        p: dict[str, Any] = {"name": name, "method": method, "path": path}
        if body is not None:
            p["body"] = body
        p["expect"] = expect
        p["relies_on"] = relies_on
        probes.append(p)

    for method, path, status, body, raw in rows:
        slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
        statuses = by_path[path][method]
        query = re.search(rf"`{method} {re.escape(path)}\?([^`\s]+)`", text)
        if method == "GET" and 200 <= status < 300:
            expect: dict[str, Any] = {"status": status}
            keys = list(dict.fromkeys(_KEY_RE.findall(body)))
            if keys:
                expect["body_has_keys"] = keys
            fixed = dict(_FIXED_RE.findall(body))
            if fixed:
                expect["body_contains"] = fixed
            full = path + ("?" + re.sub(r"=[^&]*", "=abc", query.group(1)) if query else "")
            add(f"{slug}-{status}", method, full, expect, raw)
        elif method == "GET" and status == 400 and query and any(200 <= s < 300 for s in statuses):
            expect = {"status": 400}
            fixed = dict(_FIXED_RE.findall(body))
            if fixed:
                expect["body_contains"] = fixed
            add(f"{slug}-without-query-400", method, path, expect, raw)
        elif method == "POST" and 200 <= status < 300 and "unchanged" in body.lower():
            add(f"{slug}-returns-body", method, path, {"status": status, "body": ECHO_BODY}, raw,
                body=ECHO_BODY)
        elif method == "POST" and status == 400:
            about = _about(blocks, method, path)
            fixed = dict(_FIXED_RE.findall(body))
            for phrase, sent, tag in (("missing", {}, "empty-object"),
                                      ("not a JSON object", [], "array-body")):
                quote = _sentence(about, phrase) if about else None
                if quote:
                    expect = {"status": 400, **({"body_contains": fixed} if fixed else {})}
                    add(f"{slug}-{tag}-400", method, path, expect, quote, body=sent)

    quote = _sentence(text, "other path answers 404")
    if quote:
        add("unknown-path-404", "GET", "/examiner-no-such-path", {"status": 404}, quote)
    quote = _sentence(text, "wrong method answers 405")
    if quote:
        done = 0
        for path in sorted(by_path):
            if done == 2 or "{" in path:
                break
            other = next((m for m in ("DELETE", "GET", "PUT") if m not in by_path[path]), None)
            if other is None:
                continue
            slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
            add(f"{slug}-wrong-method-405", other, path, {"status": 405}, quote)
            done += 1
    return probes
