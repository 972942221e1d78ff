"""Simulated spec mutation: rewrite one section's prose, seeded.

The rewrite adds, removes or rephrases *guidance* — sentences that the defect model reacts
to (see ``defects.py``) — so an optimizer searching over mutations finds real gradients:
adding "read the port from PORT" helps, deleting the pinned-package list hurts, and so on.
Only prose is touched: FROZEN blocks, code fences, tables and headings are kept byte for byte
(the mutation must still parse into the same contract).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from core.llm.sim.defects import rng_for


@dataclass(frozen=True)
class Guidance:
    text: str
    effect: str  # "helps <defect>", "helps habit <habit>", "hurts <defect>", "neutral", "diligence"
    pattern: str  # already present when this matches the spec (case-insensitive)


GUIDANCE: tuple[Guidance, ...] = (
    Guidance("Read the listening port from the `PORT` environment variable, falling back to the "
             "port in the front matter.", "helps wrong_port", r"\bPORT\b.{0,40}(environment|env)"),
    Guidance("The server must be ready to serve within 2 seconds of start-up; never block or sleep "
             "during start-up.", "helps blocking_startup", r"within\b.{0,20}\d+\s*s"),
    Guidance("Use only the standard library and the pinned packages; no other packages are installed.",
             "helps missing_package", r"(only|no other)\b.{0,60}\bpackages"),
    Guidance("All tests must pass: check every expected value in an assertion against the code.",
             "helps failing_test", r"tests? must pass"),
    Guidance("Write HTTP tests with the `aiohttp_client` fixture from pytest-aiohttp.",
             "helps collection_error", r"aiohttp_client"),
    Guidance("Put `asyncio_mode = auto` in `pytest.ini` so async tests run.",
             "helps async_test_config", r"asyncio_mode"),
    Guidance("Report the generation as an integer read from `CAMBRIAN_GENERATION` (0 when unset).",
             "helps health_generation", r"CAMBRIAN_GENERATION.{0,40}integer"),
    Guidance('`GET /health` answers `{"status": "ok", ...}` with exactly that status value.',
             "helps health_body", r'"status":\s*"ok"'),
    Guidance("Reject invalid or unsafe input with the documented 4xx status (400 or 422), never 200.",
             "helps error_status", r"reject\w*\b.{0,60}(invalid|unsafe)"),
    Guidance("Every JSON answer carries all of the keys the contract lists for it.",
             "helps missing_keys", r"(all|every) (of )?(the )?keys"),
    Guidance("Every module must compile: the build runs `python -m compileall`.",
             "helps syntax_error", r"compileall"),
    Guidance("Never swallow an exception with `except Exception: pass`; answer the documented "
             "error or let it propagate.", "helps habit swallowed_exception", r"swallow"),
    Guidance("Read environment variables with `os.environ.get` and a default; never index "
             "`os.environ[...]`.", "helps habit unchecked_env", r"os\.environ\.get"),
    Guidance("Never block the event loop: no network calls or blocking I/O inside `async def`, "
             "start-up hooks included.", "helps habit blocking_async", r"never block|blocks? the event loop"),
    Guidance("Do not hard-code absolute file paths; take them from configuration.",
             "helps habit hardcoded_path", r"hard-?cod\w*\b.{0,40}\bpaths?"),
    Guidance("Validate every request input (headers, query parameters, JSON fields) before using it.",
             "helps habit unchecked_input", r"validat\w*\b.{0,40}\binput"),
    Guidance("Annotate every function with type hints.", "diligence", r"type hints"),
    Guidance("Catch specific exceptions; never use a bare `except:`.", "diligence", r"specific exceptions"),
    Guidance("Measure durations with `time.monotonic()`, not `time.time()`.", "diligence", r"monotonic"),
    Guidance("Use lazy %-style formatting in log calls, never f-strings in logging.", "diligence",
             r"lazy %-?style formatting"),
    Guidance("Write meaningful assertions that check exact values; avoid trivial asserts.", "diligence",
             r"meaningful assert"),
    Guidance("Keep the code terse: as short as possible.", "hurts syntax_error", r"\bterse\b"),
    Guidance("For speed, run the event loop with uvloop.", "hurts missing_package", r"uvloop"),
    Guidance("Prefer small, well-named functions over long ones.", "neutral", r"well-named functions"),
    Guidance("Keep each module focused on one concern.", "neutral", r"one concern"),
)

REPHRASE = (
    (r"\bmust\b", "has to"),
    (r"\bhas to\b", "must"),
    (r"\bNever\b", "Do not ever"),
    (r"\bnever\b", "not ever"),
    (r"\bOnly\b", "Just"),
    (r"\bonly\b", "just"),
    (r"\banswers\b", "responds with"),
    (r"\bresponds with\b", "answers"),
    (r"\bfast\b", "quick"),
    (r"\bquick\b", "fast"),
    (r"\bevery\b", "each"),
    (r"\beach\b", "every"),
)


@dataclass
class Unit:
    text: str
    editable: bool  # prose (a paragraph or a list item) outside FROZEN/fences/tables


def split_units(body: str) -> list[Unit]:
    """Cut a section body into units; only prose units may change."""
    units: list[Unit] = []
    lines = body.split("\n")
    i = 0
    buf: list[str] = []

    def flush() -> None:
        if buf:
            units.append(Unit("\n".join(buf), True))
            buf.clear()

    while i < len(lines):
        line = lines[i]
        frozen = re.match(r"\s*<!--\s*BEGIN FROZEN:\s*([\w.-]+)\s*-->", line)
        fence = re.match(r"\s*(`{3,}|~{3,})", line)
        if frozen:
            flush()
            end = i
            while end < len(lines) and not re.match(rf"\s*<!--\s*END FROZEN:\s*{re.escape(frozen.group(1))}\s*-->", lines[end]):
                end += 1
            units.append(Unit("\n".join(lines[i : end + 1]), False))
            i = end + 1
            continue
        if fence:
            flush()
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence.group(1)):
                end += 1
            units.append(Unit("\n".join(lines[i : end + 1]), False))
            i = end + 1
            continue
        if line.lstrip().startswith(("|", "#", "<!--")):
            flush()
            units.append(Unit(line, False))
        elif not line.strip():
            flush()
            units.append(Unit(line, False))
        elif re.match(r"\s*([-*]|\d+\.)\s", line):
            flush()
            buf.append(line)
        else:
            buf.append(line)
        i += 1
    flush()
    return units


def _has_bullets(units: list[Unit]) -> bool:
    return any(u.editable and re.match(r"\s*[-*]\s", u.text) for u in units)


def _present(spec_text: str, g: Guidance) -> bool:
    return re.search(g.pattern, spec_text, re.I | re.S) is not None


def choose_operation(instructions: str, rng: random.Random) -> str:
    low = instructions.lower()
    if re.search(r"\b(remove|delete|drop|shorten|simplify|trim)\b", low):
        return "remove"
    if re.search(r"\b(add|expand|strengthen|extend|more specific|insert)\b", low):
        return "add"
    if re.search(r"\b(rephrase|reword|rewrite|clarify)\b", low):
        return rng.choice(["rephrase", "add", "remove"])
    return rng.choices(["add", "remove", "rephrase"], weights=[0.5, 0.25, 0.25])[0]


def mutate_section(spec_text: str, body: str, instructions: str, seed: int, section: str) -> str:
    """The new body of ``section`` (FROZEN blocks, fences and tables unchanged)."""
    rng = rng_for("mutate", seed, section, instructions)
    units = split_units(body)
    op = choose_operation(instructions, rng)
    editable = [i for i, u in enumerate(units) if u.editable]
    if op == "remove" and len(editable) >= 2:
        i = rng.choice(editable)
        units[i] = Unit("", False)
    elif op == "rephrase" and editable:
        i = rng.choice(editable)
        text = units[i].text
        options = [(p, r) for p, r in REPHRASE if re.search(p, text)]
        for p, r in rng.sample(options, min(2, len(options))):
            text = re.sub(p, r, text, count=1)
        units[i] = Unit(text, True)
    else:
        fresh = [g for g in GUIDANCE if not _present(spec_text, g)]
        if not fresh:
            fresh = list(GUIDANCE)
        weights = [3.0 if g.effect.startswith(("helps", "diligence")) else 1.0 for g in fresh]
        chosen = rng.choices(fresh, weights=weights, k=1 + (rng.random() < 0.3))
        chosen = list(dict.fromkeys(chosen))
        if _has_bullets(units):
            add = "\n".join(f"- {g.text}" for g in chosen)
            last = max(i for i, u in enumerate(units) if u.editable and re.match(r"\s*[-*]\s", u.text))
            units.insert(last + 1, Unit(add, True))
        else:
            add = " ".join(g.text for g in chosen)
            # a paragraph of its own, before any trailing blank lines
            tail = len(units)
            while tail > 0 and not units[tail - 1].text.strip():
                tail -= 1
            units[tail:tail] = [Unit("", False), Unit(add, True)]
    out = "\n".join(u.text for u in units)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip("\n") + "\n"
