"""Reading a ``<retry>`` block: which defects did the failed attempt have, and which does
the rig's diagnostic point at?

A real model reads the failed files and the diagnostics; the sim does the same with
detectors for its own mistakes. Where a file it would need was cut from the prompt, the
detector answers ``None`` and the caller falls back to re-deriving the first attempt.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

from core.llm.sim.breeding import KINDS as BREEDING
from core.llm.sim.hidden import KINDS as HIDDEN
from core.llm.sim.codegen import MISSING_PACKAGES
from core.llm.sim.defects import KINDS
from core.llm.sim.habits import HABITS
from core.llm.sim.specinfo import GENERATION_TOKEN, SpecInfo

RETRY_RE = re.compile(r'<retry(?P<attrs>[^>]*)>\n?(?P<body>.*?)</retry>', re.S)
FAILED_FILE_RE = re.compile(
    r'<failed-file path="(?P<path>[^"]*)" truncated="(?P<trunc>true|false)">\n(?P<body>.*?)\n</failed-file>', re.S
)


@dataclass
class RetryContext:
    generation: int | None
    attempt: int
    stage: str
    text: str  # the whole block, for signature matching
    files: dict[str, str] = field(default_factory=dict)  # complete (untruncated) failed files
    partial: set[str] = field(default_factory=set)  # truncated or omitted paths


def _attr(attrs: str, name: str) -> str | None:
    m = re.search(rf'{name}="([^"]*)"', attrs)
    return m.group(1) if m else None


def parse_retry(text: str) -> RetryContext | None:
    m = RETRY_RE.search(text)
    if not m:
        return None
    attrs, body = m.group("attrs"), m.group("body")
    gen = _attr(attrs, "generation")
    att = _attr(attrs, "attempt")
    stage_m = re.search(r"^stage:\s*(\w+)", body, re.M)
    stage = stage_m.group(1) if stage_m else ""
    if not stage:
        for word in ("build", "test", "start", "health", "manifest"):
            if re.search(rf"\b{word}\b", body):
                stage = word
                break
    ctx = RetryContext(
        generation=int(gen) if gen and gen.isdigit() else None,
        attempt=int(att) if att and att.isdigit() else 1,
        stage=stage,
        text=body,
    )
    for fm in FAILED_FILE_RE.finditer(body):
        path = fm.group("path").replace("&quot;", '"').replace("&amp;", "&")
        if fm.group("trunc") == "true":
            ctx.partial.add(path)
        else:
            ctx.files[path] = fm.group("body") + "\n"
    om = re.search(r"\[omitted: ([^\]]*)\]", body)
    if om:
        ctx.partial |= {p.strip() for p in om.group(1).split(",") if p.strip()}
    return ctx


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
    except SyntaxError:
        return False
    return True


def detect(spec: SpecInfo, rc: RetryContext) -> dict[str, bool | None]:
    """Defect -> present in the failed files (True/False), or None when unknown."""
    files, pkg = rc.files, spec.package
    out: dict[str, bool | None] = {k: None for k in KINDS}

    def get(path: str) -> str | None:
        return files.get(path)

    py = [p for p in files if p.endswith(".py")]
    if any(not _parses(files[p]) for p in py):
        out["syntax_error"] = True
    elif py and not any(p.endswith(".py") for p in rc.partial):
        out["syntax_error"] = False
    main, config, app = get(f"{pkg}/__main__.py"), get(f"{pkg}/config.py"), get(f"{pkg}/app.py")
    if main is not None:
        out["missing_package"] = bool(re.search(
            r"^\s*(import|from)\s+(" + "|".join(MISSING_PACKAGES) + r")\b", main, re.M))
        out["blocking_startup"] = "time.sleep(" in main
    if config is not None:
        out["wrong_port"] = '"PORT"' not in config
    tests = {p: c for p, c in files.items() if p.startswith("tests/")}
    if tests and not any(p.startswith("tests/") for p in rc.partial):
        out["collection_error"] = any(
            re.search(r"from tests\.helpers import|import build_application|from pytest_httpserver", c)
            for c in tests.values()
        )
    ini = get("pytest.ini")
    if ini is not None:
        uses_async = any("async def test_" in c for c in tests.values())
        out["async_test_config"] = uses_async and "asyncio_mode" not in ini
    if config is not None and app is not None:
        wants_gen = any(GENERATION_TOKEN in json.dumps(v.expect.body_contains or v.expect.body)
                        for v in spec.vectors)
        wrong_env = re.search(r'"GENERATION"', config) is not None
        as_string = re.search(r"generation\s*:\s*str\b|generation=env\.get\(", config) is not None
        health_fn = re.search(r"def (health|handle_get_health)\(.*?(?=\n(async )?def |\Z)", app, re.S)
        omitted = health_fn is not None and "generation" not in health_fn.group(0)
        out["health_generation"] = wants_gen and (wrong_env or as_string or omitted)
    if app is not None:
        out["health_body"] = bool(re.search(r'"status":\s*"(healthy|up)"|"healthy":\s*True', app))
        keys = {k for v in spec.vectors for k in (v.expect.body_has_keys or ()) if v.expect.status < 400}
        out["missing_keys"] = bool(keys) and any(json.dumps(k) not in app for k in keys)
        parser = get(f"{pkg}/parser.py")
        err = bool(re.search(r'query\.get\("text", ""\)|/\{tail:\.\*\}|\{"ok": True\}|error\(422, "bad-request"', app))
        if parser is not None:
            err = err or '".."' not in parser or "reserved-path" not in parser
        out["error_status"] = err
    return out


def detect_breeding(spec: SpecInfo, rc: RetryContext) -> dict[str, bool | None]:
    """Breeding defect -> present in the failed files, or None when the module it lives in
    was cut from the prompt (``breeding.py``; a diagnostic never names one)."""
    pkg = spec.package
    llm, gen = rc.files.get(f"{pkg}/llm.py"), rc.files.get(f"{pkg}/generator.py")
    out: dict[str, bool | None] = {k: None for k in BREEDING}
    if llm is not None:
        out["swapped_roles"] = '"system": user' in llm
        out["content_blocks"] = 'block["text"]' in llm or "str(response.content)" in llm
    if gen is not None:
        out["prompt_without_spec"] = 'parts = [f"Generate generation' in gen
        out["manifest_not_written"] = '"manifest.json").write_text' not in gen
        out["wrong_spec_copy"] = "split_front_matter(content)" in gen
    return out


def detect_hidden(spec: SpecInfo, rc: RetryContext) -> dict[str, bool | None]:
    """Hidden violation -> present in the failed files, or None when its module was cut from
    the prompt (``hidden.py``; a diagnostic never names one)."""
    pkg = spec.package
    parser, app = rc.files.get(f"{pkg}/parser.py"), rc.files.get(f"{pkg}/app.py")
    out: dict[str, bool | None] = {k: None for k in HIDDEN}
    if parser is not None:
        out["duplicate_path_kept"] = "in seen" not in parser
    if app is not None:
        out["bare_parse_400"] = '{"message": str(exc)}, status=400' in app
        out["text_coerced"] = "text = str(text)" in app
    return out


_SWALLOW_RE = re.compile(r"except( Exception| BaseException)?:\s*\n\s*pass\b")


def detect_habits(spec: SpecInfo, rc: RetryContext) -> dict[str, str | None]:
    """Habit -> "bite" / "harmless" / "" (absent) as the failed files show it, or None when
    a file it would need was cut from the prompt."""
    files, pkg = rc.files, spec.package
    main, config, app = files.get(f"{pkg}/__main__.py"), files.get(f"{pkg}/config.py"), files.get(f"{pkg}/app.py")
    out: dict[str, str | None] = {h: None for h in HABITS}
    if config is not None and app is not None:
        out["swallowed_exception"] = ("bite" if _SWALLOW_RE.search(app) else
                                      "harmless" if _SWALLOW_RE.search(config) else "")
    if main is not None:
        out["unchecked_env"] = ("bite" if 'os.environ["PORT"]' in main else
                                "harmless" if 'os.environ["CAMBRIAN_GENERATION"]' in main else "")
        out["blocking_async"] = ("bite" if "urlopen(" in main else
                                 "harmless" if "async def load_banner" in main else "")
        out["hardcoded_path"] = ("bite" if '"/var/lib/' in main else
                                 "harmless" if "def write_pid_file" in main else "")
    if app is not None:
        out["unchecked_input"] = ("bite" if 'headers["User-Agent"]' in app else
                                  "harmless" if 'headers["Host"]' in app else "")
    return out


def named_by_diagnostics(rc: RetryContext, previous: set[str],
                         previous_habits: dict[str, bool] | None = None) -> set[str]:
    """The defects (and biting habits) the rig's diagnostics point at: those of the failing
    stage that the failed attempt had, plus any whose signature the diagnostics show."""
    stage = rc.stage
    if stage not in ("build", "test", "start", "health"):
        return set()
    named = {d for d in previous if KINDS[d].stage == stage}
    for name, kind in KINDS.items():
        if kind.stage == stage and kind.signature and re.search(kind.signature, rc.text, re.I):
            if name in previous or not previous & {n for n, k in KINDS.items() if k.stage == stage}:
                named.add(name)
    for name, bites in (previous_habits or {}).items():
        if bites and HABITS[name].stage == stage:
            named.add(name)
    return named
