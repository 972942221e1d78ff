"""Spec amendments: proposing them from significant features, and applying them.

The feature -> section mapping and the guideline texts live here; ``README.md`` beside
this file lists them. Every edit goes through ``core.spec.insert_into_section`` (the
FROZEN-safe editor) and is verified again afterwards: FROZEN blocks byte-identical
(``frozen_preserved``) and the result a valid spec (``check_spec``). Anything else is
refused with the reason and the amendment stays pending.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from core.distill import features as F
from core.distill import stats as S
from core.models import Amendment, AmendmentStatus, SpecVersion
from core.spec import (
    SpecError,
    check_spec,
    frozen_preserved,
    insert_into_section,
    parse_spec,
)

#: Where a guideline goes when none of its feature's preferred sections exists.
DEFAULT_SECTION = "Implementation Requirements"
#: Last resort: a new ``##`` section appended at the end of the spec (only when the
#: result still passes the spec grammar; a spec may hold any number of extra sections).
NEW_SECTION = "Distilled Guidelines"

#: Preferred target sections per feature, in order. The chain always continues with
#: DEFAULT_SECTION and then NEW_SECTION.
FEATURE_SECTIONS: dict[str, tuple[str, ...]] = {
    "monotonic_clock": ("Implementation Requirements",),
    "wall_clock_duration": ("Implementation Requirements",),
    "retry_backoff": ("Generation Loop", "Implementation Requirements"),
    "bare_except": ("Implementation Requirements",),
    "broad_except": ("Implementation Requirements",),
    "swallowed_exception": ("Implementation Requirements",),
    "specific_excepts": ("Implementation Requirements",),
    "typed_functions": ("Implementation Requirements",),
    "pydantic_models": ("Implementation Requirements",),
    "dataclasses": ("Implementation Requirements",),
    "log_fstring": ("Implementation Requirements",),
    "print_in_library": ("Implementation Requirements",),
    "blocking_in_async": ("Implementation Requirements",),
    "hardcoded_abs_path": ("Implementation Requirements",),
    "hardcoded_port": ("Implementation Requirements",),
    "env_config": ("Implementation Requirements",),
    "unchecked_env_read": ("Implementation Requirements",),
    "unchecked_input": ("Implementation Requirements",),
    "unclosed_resource": ("Implementation Requirements",),
    "trivial_asserts": ("Testing",),
    "weak_asserts": ("Testing",),
    "dense_asserts": ("Testing",),
    "docstrings": ("Implementation Requirements",),
}

#: Guideline text per feature and direction ("helps": the feature goes with success,
#: "hurts": with failure). Only directions that agree with the feature's polarity have a
#: text; a result in the other direction is reported, not proposed.
TEXTS: dict[str, dict[str, str]] = {
    "monotonic_clock": {
        "helps": "Measure durations, timeouts and deadlines with `time.monotonic()` (or "
                 "`time.perf_counter()`); never with `time.time()` or `datetime.now()`.",
    },
    "wall_clock_duration": {
        "hurts": "Never compute a duration or a deadline from `time.time()` or `datetime.now()`: "
                 "the wall clock jumps; use the monotonic clock `time.monotonic()`.",
    },
    "retry_backoff": {
        "helps": "Retry transient I/O failures (connection errors, timeouts, 429 and 5xx answers) "
                 "a bounded number of times with exponential backoff and jitter, and give up with "
                 "a clear error after the last attempt.",
        "hurts": "Do not wrap calls in retry loops of your own: call once, and report a failure "
                 "at once with a clear error instead of sleeping and trying again.",
    },
    "bare_except": {
        "hurts": "Never write a bare `except:`; catch specific exceptions and let everything else "
                 "propagate.",
    },
    "broad_except": {
        "hurts": "Do not catch `Exception` or `BaseException`; catch specific exceptions so that "
                 "programming errors surface instead of being hidden.",
    },
    "swallowed_exception": {
        "hurts": "Never silence an error with `except ...: pass`; handle it, log it with its "
                 "context, or re-raise it.",
    },
    "specific_excepts": {
        "helps": "Catch specific exceptions only (for example `except (OSError, ValueError) as exc:`), "
                 "never a bare `except:` or `except Exception:`.",
    },
    "typed_functions": {
        "helps": "Give every function full type hints: annotate each parameter and the return "
                 "type.",
    },
    "pydantic_models": {
        "helps": "Validate request bodies and settings with pydantic models rather than hand-written "
                 "checks on dicts.",
        "hurts": "Validate input with small explicit checks on plain data; do not introduce "
                 "pydantic models.",
    },
    "dataclasses": {
        "helps": "Hold settings and records in `@dataclass` classes, not in loose dicts or tuples.",
        "hurts": "Do not introduce `@dataclass` classes; keep settings and records in the plain "
                 "structures the rest of the code uses.",
    },
    "log_fstring": {
        "hurts": "Do not use f-strings in log calls: pass values as arguments "
                 "(`log.info(\"took %s ms\", ms)`) or as structured fields, so formatting stays lazy.",
    },
    "print_in_library": {
        "hurts": "Do not call `print()` in library code; report through the logger. Only the "
                 "`__main__` entry point may print.",
    },
    "blocking_in_async": {
        "hurts": "Never block inside `async def`: no `time.sleep`, `requests`, `subprocess.run` or "
                 "plain `open()` there; use `await asyncio.sleep`, aiohttp, "
                 "`asyncio.create_subprocess_exec` or `asyncio.to_thread`.",
    },
    "hardcoded_abs_path": {
        "hurts": "Do not hard-code absolute filesystem paths such as `/tmp/...` or `/var/lib/...`; "
                 "take paths from configuration, and use pytest's `tmp_path` in tests.",
    },
    "hardcoded_port": {
        "hurts": "Do not hard-code the port at call sites or in URLs; read it once from the "
                 "configuration (an environment variable with the documented default) and pass "
                 "it on.",
    },
    "env_config": {
        "helps": "Read configuration from environment variables (`os.environ.get` with a "
                 "documented default) in one configuration module.",
        "hurts": "Do not read environment variables throughout the code; read them in one place "
                 "at start-up and pass the values on explicitly.",
    },
    "unchecked_env_read": {
        "hurts": "Read environment variables with `os.environ.get(NAME, default)` and a documented "
                 "default; never index `os.environ[NAME]`, which crashes when the variable is unset.",
    },
    "unchecked_input": {
        "hurts": "Validate request input before using it: read headers, query parameters and JSON "
                 "fields with `.get()` and check them; never index `request.headers[...]` or "
                 "`payload[...]` directly, and answer a missing value with the documented 4xx.",
    },
    "unclosed_resource": {
        "hurts": "Open files, sessions and connections with `with` / `async with` so they are "
                 "always closed; never leave an `open()` or `ClientSession()` without a context "
                 "manager.",
    },
    "trivial_asserts": {
        "hurts": "No trivial assertions in tests (`assert True`, `assert x == x`, comparing two "
                 "constants): every assert checks a value the code under test produced.",
    },
    "weak_asserts": {
        "hurts": "Assert exact expected values in tests; `assert x is not None` or a bare "
                 "truthiness check alone does not test anything.",
    },
    "dense_asserts": {
        "helps": "Each test checks its outcome with at least two meaningful assertions, for "
                 "example the status code and the exact body.",
    },
    "docstrings": {
        "helps": "Give every module, class and public function a one-line docstring.",
        "hurts": "Keep docstrings for what is not obvious; do not add boilerplate docstrings to "
                 "every function.",
    },
}

MAX_EXAMPLES = 3
#: at most this many generations are re-read with line numbers to find distinct examples
MAX_SCAN = 30


class AmendmentRefused(RuntimeError):
    """An amendment cannot be applied; ``reason`` says why. The amendment is unchanged."""

    def __init__(self, amendment_id: int | None, reason: str):
        self.amendment_id = amendment_id
        self.reason = reason
        prefix = f"amendment {amendment_id} refused: " if amendment_id is not None else "amendment refused: "
        super().__init__(prefix + reason)


# --- sections -------------------------------------------------------------------------------


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def _protected(spec: Any, section: Any) -> list[str]:
    """Names of FROZEN blocks that lie in ``section`` (such a section is not a target)."""
    return [b.name for b in spec.frozen if section.start_line <= b.start_line <= section.end_line]


def target_section(spec_text: str, feature: str) -> str:
    """The section a guideline about ``feature`` goes to: the first existing,
    unprotected one of FEATURE_SECTIONS[feature], DEFAULT_SECTION, NEW_SECTION; or
    NEW_SECTION (created when the amendment is accepted)."""
    try:
        spec = parse_spec(spec_text)
    except SpecError:
        return FEATURE_SECTIONS.get(feature, (DEFAULT_SECTION,))[0]
    for name in (*FEATURE_SECTIONS.get(feature, ()), DEFAULT_SECTION, NEW_SECTION):
        sec = spec.section(name)
        if sec is not None and not _protected(spec, sec):
            return sec.name
    return NEW_SECTION


def _format_addition(section_body: str, text: str) -> str:
    """The text as a list item when the section ends with a ``-``/``*`` list, else as a
    paragraph."""
    text = text.strip()
    lines = [ln for ln in section_body.splitlines() if ln.strip()]
    while lines and re.match(r"^\s*<!--", lines[-1]):
        lines.pop()
    head = None
    for ln in reversed(lines):
        if not ln[:1].isspace():
            head = ln
            break
    if head is not None and re.match(r"^[-*+] ", head) and not re.match(r"^[-*+] |\d+[.)] ", text):
        bullet = head[0]
        first, *rest = text.splitlines()
        return "\n".join([f"{bullet} {first}", *(f"  {r}" if r.strip() else "" for r in rest)])
    return text


def _text_in(body: str, text: str) -> bool:
    return _norm(text) in _norm(body.replace("\n- ", "\n").replace("\n* ", "\n"))


def _already_proposed(feature: str, prior: Amendment) -> Skipped:
    return Skipped(feature, f"amendment {prior.id} for this spec and feature is already {prior.status.value}")


def apply_text(spec_text: str, section: str, text: str, amendment_id: int | None = None) -> str:
    """The spec with ``text`` added to ``section``. Raises :class:`AmendmentRefused`."""
    if not text or not text.strip():
        raise AmendmentRefused(amendment_id, "the amendment text is empty")
    issues = check_spec(spec_text)
    if issues:
        raise AmendmentRefused(amendment_id, f"the parent spec is not valid ({issues[0]}); fix it first")
    spec = parse_spec(spec_text)
    sec = spec.section(section)
    try:
        if sec is None:
            if _norm(section) != _norm(NEW_SECTION):
                raise AmendmentRefused(amendment_id, f"the spec has no section '## {section}'")
            base = spec_text if spec_text.endswith("\n") or not spec_text else spec_text + "\n"
            staged = base + f"\n## {NEW_SECTION}\n"
            new = insert_into_section(staged, NEW_SECTION, text.strip())
        else:
            blocks = _protected(spec, sec)
            if blocks:
                raise AmendmentRefused(
                    amendment_id,
                    f"section '## {sec.name}' holds the FROZEN block(s) {', '.join(repr(b) for b in blocks)}; "
                    "FROZEN regions cannot be amended",
                )
            new = insert_into_section(spec_text, sec.name, _format_addition(sec.body, text))
    except SpecError as exc:
        reasons = "; ".join(str(i) for i in exc.issues) or str(exc)
        if any("frozen" in i.code for i in exc.issues):
            reasons = "it would touch a FROZEN block: " + reasons
        raise AmendmentRefused(amendment_id, reasons) from exc
    problems = frozen_preserved(spec_text, new)
    if problems:
        raise AmendmentRefused(amendment_id, "it would change a FROZEN block: " + "; ".join(map(str, problems)))
    problems = check_spec(new)
    if problems:
        raise AmendmentRefused(amendment_id, "the amended spec would be invalid: " + "; ".join(map(str, problems)))
    return new


# --- review actions ---------------------------------------------------------------------------


def distill_preview(store: Any, amendment_id: int, edited_text: str | None = None) -> tuple[str, str]:
    """(old spec text, new spec text) for an amendment, without storing anything.
    Raises :class:`AmendmentRefused` when it cannot be applied."""
    a = store.amendment(amendment_id)
    old = store.spec_text(a.spec_hash)
    text = a.text if edited_text is None else edited_text
    return old, apply_text(old, a.section, text, amendment_id)


def accept_amendment(store: Any, amendment_id: int, edited_text: str | None = None) -> SpecVersion:
    """Apply a pending amendment to its spec, store the result as a new spec version
    (origin ``amendment``, parent = the amendment's spec) and mark the amendment
    ``accepted`` (or ``edited`` when ``edited_text`` differs from the proposal)."""
    a = store.amendment(amendment_id)
    if a.status != AmendmentStatus.PENDING:
        raise AmendmentRefused(amendment_id, f"it is {a.status.value}, not pending")
    text = a.text if edited_text is None else edited_text.strip()
    old = store.spec_text(a.spec_hash)
    new = apply_text(old, a.section, text, amendment_id)
    version = store.add_spec(new, parent_hash=a.spec_hash, origin="amendment",
                             label=f"amendment-{amendment_id}")
    edited = text != a.text
    store.set_amendment_status(
        amendment_id,
        AmendmentStatus.EDITED if edited else AmendmentStatus.ACCEPTED,
        text=text if edited else None,
        result_spec_hash=version.hash,
    )
    return version


def reject_amendment(store: Any, amendment_id: int) -> Amendment:
    a = store.amendment(amendment_id)
    if a.status != AmendmentStatus.PENDING:
        raise AmendmentRefused(amendment_id, f"it is {a.status.value}, not pending")
    return store.set_amendment_status(amendment_id, AmendmentStatus.REJECTED)


# --- proposing ----------------------------------------------------------------------------------


@dataclass
class Skipped:
    feature: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"feature": self.feature, "reason": self.reason}


def examples_for(
    feature: str,
    generations: Iterable[int],
    gen_features: Mapping[int, F.GenerationFeatures],
    load_file: Callable[[int, str], bytes | None],
    limit: int = MAX_EXAMPLES,
) -> list[dict[str, Any]]:
    """Up to ``limit`` snippets, one per generation, in generation order; snippets that
    repeat one already chosen are used only when there are not enough distinct ones."""
    out: list[dict[str, Any]] = []
    repeats: list[dict[str, Any]] = []
    seen: set[str] = set()
    scanned = 0
    for g in sorted(generations):
        gf = gen_features.get(g)
        if gf is None or not gf.values.get(feature):
            continue
        scanned += 1
        if scanned > MAX_SCAN:
            break
        for path in sorted(p for p, c in gf.files.items() if c.get(feature)):
            data = load_file(g, path)
            line = F.first_hit(path, data, feature) if data is not None else None
            if line is None:
                continue
            code = F.snippet(data, line)
            ex = {"generation": g, "file": path, "line": line, "code": code}
            key = "\n".join(ln.split("|", 1)[-1] for ln in code.splitlines())
            if key in seen:
                repeats.append(ex)
            else:
                seen.add(key)
                out.append(ex)
            break
        if len(out) >= limit:
            return out
    return (out + repeats)[:limit]


def propose(
    store: Any,
    *,
    campaign_id: str | None,
    spec_hash: str,
    analysis: S.Analysis,
    gen_features: Mapping[int, F.GenerationFeatures],
    load_file: Callable[[int, str], bytes | None],
) -> tuple[list[Amendment], list[Skipped]]:
    """Create pending amendments for the significant features. Returns the amendments
    stored (with ids) and the significant features that were not proposed, with why."""
    spec_text = store.spec_text(spec_hash)
    try:
        spec = parse_spec(spec_text)
    except SpecError:
        spec = None
    existing = [a for a in store.amendments() if a.spec_hash == spec_hash]
    made: list[Amendment] = []
    skipped: list[Skipped] = []
    significant = analysis.significant()
    for feat in [f.name for f in F.FEATURES]:
        tests = [t for t in significant if t.feature == feat]
        if not tests:
            continue
        directions = {t.direction for t in tests}
        if len(directions) > 1:
            skipped.append(Skipped(feat, "significant in opposite directions in the two comparisons"))
            continue
        direction = directions.pop()
        text = TEXTS.get(feat, {}).get(direction)
        if text is None:
            polarity = F.BY_NAME[feat].polarity
            skipped.append(Skipped(
                feat, f"{direction} although it is usually {polarity} practice; reported, not proposed "
                      "(likely confounded)"))
            continue
        section = target_section(spec_text, feat)
        sec = spec.section(section) if spec is not None else None
        if sec is not None and _text_in(sec.body, text):
            skipped.append(Skipped(feat, f"the guideline is already in '## {sec.name}'"))
            continue
        prior = [a for a in existing if a.feature == feat]
        if prior:
            p = prior[-1]
            skipped.append(_already_proposed(feat, p))
            continue
        main = next((t for t in tests if t.comparison == "viable_vs_failed"), tests[0])
        source = main.group_a if direction == "helps" else main.group_b
        evidence = {
            "feature": feat,
            "description": F.BY_NAME[feat].description,
            "direction": direction,
            "comparison": main.comparison,
            "groups": {main.group_a: main.a.to_json(), main.group_b: main.b.to_json()},
            "p": S.sig(main.p),
            "q": S.sig(main.q),
            "odds_ratio": S.sig(main.odds_ratio),
            "odds_ratio_haldane": S.sig(main.odds_ratio_haldane),
            "tests": [t.to_json() for t in tests],
            "examples": examples_for(feat, analysis.groups[source], gen_features, load_file),
            "examples_from": source,
            "rules": {
                "test": "Fisher's exact test, two-sided",
                "correction": "Benjamini-Hochberg across the features tested in each comparison",
                "alpha": S.ALPHA,
                "min_group": S.MIN_GROUP,
                "min_support": S.MIN_SUPPORT,
                "min_rate_diff": S.MIN_RATE_DIFF,
            },
        }
        a = Amendment(campaign_id=campaign_id, spec_hash=spec_hash, section=section, text=text,
                      feature=feat, evidence=evidence, status=AmendmentStatus.PENDING)
        a.id, prior = store.add_amendment_once(a)
        if prior is not None:  # another distiller proposed it since we looked
            skipped.append(_already_proposed(feat, prior))
            continue
        existing.append(a)
        made.append(a)
    return made, skipped
