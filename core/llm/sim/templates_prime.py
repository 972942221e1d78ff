"""The Prime codebase the sim writes for ``spec/prime.md``.

A complete aiohttp service: the LLM-output parser with its error codes, the manifest
builder, the spec reader, a lazily created Anthropic client, the generation loop with
one repair call, and the web application with ``/health``, ``/stats``, ``/parse``,
``/manifest`` and ``/generate``. Tests cover every module. Defects are applied where a
model would make them (see ``defects.py``).
"""

from __future__ import annotations

import hashlib
import json
import re

from core.llm.sim import codegen as cg
from core.llm.sim.codegen import Ctx, HttpCase, UnitCase, dedent

STATS_KEYS = ["generation", "uptime-seconds", "requests-served", "generations-attempted", "generations-succeeded"]


def _j(value: object) -> str:
    """A one-line Python string literal (never a line starting with a block marker)."""
    return json.dumps(value)


# --- package modules -------------------------------------------------------------------


# --- hidden violations (hidden.py): Layer 1 passes them, one hidden layer catches each ------

_DUPLICATE_RE = re.compile(r"\n[ ]*if path in seen:\n[^\n]*\n")
_PARSE_400 = ('    """``{"text": S}`` -> ``{"files": [...]}``; parse failures are 422."""\n    try:\n'
              '        payload = await read_object(request)\n    except BadRequest as exc:\n'
              '        return error(400, "bad-request", str(exc))\n')
_TEXT_CHECK_RE = re.compile(r"    if not isinstance\(text, str\):\n        return error\((\d+), ")


def hidden_parser(ctx: Ctx, src: str) -> str:
    """``duplicate_path_kept``: the duplicate check left out (only a sealed vector asks)."""
    if "duplicate_path_kept" in ctx.hidden:
        src, n = _DUPLICATE_RE.subn("\n", src)
        assert n == 1
    return src


def hidden_app(ctx: Ctx, src: str) -> str:
    """``bare_parse_400``: /parse's 400 for a body that is not a JSON object (or not JSON) has
    no ``error`` field (the examiner's probe asks for it); ``text_coerced``: a non-string ``text`` is ``str()``-ed and parsed (the red team
    sends ``{"text": 5}``)."""
    if "bare_parse_400" in ctx.hidden:
        assert _PARSE_400 in src
        src = src.replace(_PARSE_400, _PARSE_400.replace(
            'error(400, "bad-request", str(exc))', 'web.json_response({"message": str(exc)}, status=400)'))
    if "text_coerced" in ctx.hidden:
        src, n = _TEXT_CHECK_RE.subn(r"    if text is None:\n        return error(\1, ", src)
        assert n == 1
        src = src.replace("\"'text' must be a string\")\n", "\"'text' is missing\")\n    text = str(text)\n", 1)
    return src


def parser_module(ctx: Ctx) -> str:
    variant = ctx.variants.get("error_status", "")
    dotdot = "" if variant == "dotdot" else ', ".."'
    reserved = (
        '    if path == "manifest.json":\n'
        if variant == "reserved"
        else '    if path == "manifest.json" or (not allow_spec and (path == "spec" or path.startswith("spec/"))):\n'
    )
    # In the "reserved" variant the model forgot the rule entirely.
    if variant == "reserved":
        reserved_block = ""
    else:
        reserved_block = reserved + '        return "reserved-path", f"reserved path {path!r}"\n'
    src = dedent('''
        """Parse a model answer into files (the "LLM Output Format" of the spec)."""

        from __future__ import annotations

        import re
        from dataclasses import dataclass

        OPEN_RE = re.compile(r'^<file path="([^"]*)">$')
        CLOSE_LINE = "</file" + ":end>"
        OPEN_PREFIX = "<file"


        @dataclass(frozen=True)
        class FileBlock:
            """One file proposed by the model."""

            path: str
            content: str


        class ParseError(ValueError):
            """A problem in a model answer: a stable code and the 1-based line."""

            def __init__(self, code: str, line: int, message: str) -> None:
                super().__init__(f"line {line}: {message}")
                self.code = code
                self.line = line
                self.message = message

            def to_json(self) -> dict[str, object]:
                return {"error": self.code, "message": self.message, "line": self.line}


        def path_problem(path: str, allow_spec: bool = False) -> tuple[str, str] | None:
            """``(code, message)`` when ``path`` breaks the path rules, else None."""
            if not path or path.startswith("/") or "\\\\" in path or "\\x00" in path:
                return "unsafe-path", f"unsafe path {path!r}"
            for segment in path.split("/"):
                if segment in ("", "."@DOTDOT@):
                    return "unsafe-path", f"unsafe path {path!r}"
        @RESERVED@    return None


        def split_lines(text: str) -> list[str]:
            """Lines of ``text``, each keeping its ``\\\\n`` (only ``\\\\n`` ends a line)."""
            parts = text.split("\\n")
            lines = [part + "\\n" for part in parts[:-1]]
            if parts[-1]:
                lines.append(parts[-1])
            return lines


        def parse_answer(text: str) -> list[FileBlock]:
            """Every block of ``text`` in order; raises ParseError at the first problem."""
            blocks: list[FileBlock] = []
            seen: set[str] = set()
            current: str | None = None
            opened_at = 0
            body: list[str] = []
            for number, raw in enumerate(split_lines(text), start=1):
                line = raw[:-1] if raw.endswith("\\n") else raw
                if current is None:
                    if not line.startswith(OPEN_PREFIX):
                        continue
                    match = OPEN_RE.match(line)
                    if match is None:
                        raise ParseError("malformed-open", number, "not a valid opening line")
                    path = match.group(1)
                    problem = path_problem(path)
                    if problem is not None:
                        raise ParseError(problem[0], number, problem[1])
                    if path in seen:
                        raise ParseError("duplicate-path", number, f"{path!r} appears twice")
                    seen.add(path)
                    current, opened_at, body = path, number, []
                elif line == CLOSE_LINE:
                    blocks.append(FileBlock(current, "".join(body)))
                    current = None
                elif line.startswith(OPEN_PREFIX):
                    raise ParseError("nested-block", number, "a block opens inside another block")
                else:
                    body.append(raw)
            if current is not None:
                raise ParseError("unterminated-block", opened_at, f"block {current!r} is never closed")
            if not blocks:
                raise ParseError("no-files", 1, "the answer holds no file block")
            return blocks
        ''').replace("@DOTDOT@", dotdot).replace("@RESERVED@    ", reserved_block + "    ")
    return hidden_parser(ctx, src)


def manifest_module(ctx: Ctx) -> str:
    return dedent('''
        """Build ``manifest.json`` for a set of files (the "Manifest" section of the spec)."""

        from __future__ import annotations

        import hashlib
        from datetime import datetime
        from typing import Any, Mapping

        from @PKG@.errors import BadRequest
        from @PKG@.parser import path_problem

        ENTRY_KEYS = ("build", "test", "start", "health")


        class ManifestError(ValueError):
            """The files cannot form an artifact (answered with 422)."""

            def __init__(self, code: str, message: str) -> None:
                super().__init__(message)
                self.code = code
                self.message = message


        def sha256_tag(data: bytes) -> str:
            return "sha256:" + hashlib.sha256(data).hexdigest()


        def artifact_hash(files: Mapping[str, str]) -> str:
            """sha256 over every file but manifest.json, sorted: path, NUL, bytes."""
            digest = hashlib.sha256()
            for path in sorted(files):
                if path == "manifest.json":
                    continue
                digest.update(path.encode("utf-8"))
                digest.update(b"\\x00")
                digest.update(files[path].encode("utf-8"))
            return "sha256:" + digest.hexdigest()


        def spec_copy(files: Mapping[str, str]) -> str:
            """The one ``spec/*.md`` path among ``files``."""
            copies = [p for p in files if p.startswith("spec/") and p.endswith(".md")]
            if len(copies) != 1:
                raise ManifestError("spec-copy", f"expected exactly one spec/*.md file, found {len(copies)}")
            return copies[0]


        def build_manifest(
            files: Mapping[str, str],
            generation: int,
            parent_generation: int,
            producer_model: str,
            token_usage: Mapping[str, int],
            created_at: str,
            entry: Mapping[str, str],
            contracts: list[dict[str, Any]] | None = None,
        ) -> dict[str, Any]:
            """The manifest of ``files`` (paths checked, hashes computed, files sorted)."""
            for path in files:
                problem = path_problem(path, allow_spec=True)
                if problem is not None:
                    raise ManifestError(*problem)
            spec_path = spec_copy(files)
            manifest: dict[str, Any] = {
                "cambrian-version": 1,
                "generation": generation,
                "parent-generation": parent_generation,
                "spec-hash": sha256_tag(files[spec_path].encode("utf-8")),
                "artifact-hash": artifact_hash(files),
                "producer-model": producer_model,
                "token-usage": {"input": int(token_usage["input"]), "output": int(token_usage["output"])},
                "files": sorted([*files, "manifest.json"]),
                "created-at": created_at,
                "entry": {key: entry[key] for key in ENTRY_KEYS},
            }
            if contracts:
                manifest["contracts"] = contracts
            return manifest


        def _count(payload: Mapping[str, Any], key: str) -> int:
            value = payload.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BadRequest(f"{key!r} must be an integer >= 0")
            return value


        def manifest_from_request(payload: Mapping[str, Any]) -> dict[str, Any]:
            """Validate a ``POST /manifest`` body (BadRequest) and build the manifest."""
            generation = _count(payload, "generation")
            parent = _count(payload, "parent-generation")
            model = payload.get("producer-model")
            if not isinstance(model, str):
                raise BadRequest("'producer-model' must be a string")
            usage = payload.get("token-usage")
            if not isinstance(usage, dict):
                raise BadRequest("'token-usage' must be an object")
            usage = {"input": _count(usage, "input"), "output": _count(usage, "output")}
            created_at = payload.get("created-at")
            if not isinstance(created_at, str):
                raise BadRequest("'created-at' must be an ISO-8601 string")
            try:
                datetime.fromisoformat(created_at.replace("Z", "+00:00"))
            except ValueError as exc:
                raise BadRequest(f"'created-at' is not ISO-8601: {exc}") from exc
            entry = payload.get("entry")
            if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ENTRY_KEYS):
                raise BadRequest("'entry' must hold build, test, start and health strings")
            files = payload.get("files")
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise BadRequest("'files' must map paths to text")
            return build_manifest(files, generation, parent, model, usage, created_at, entry)
        ''').replace("@PKG@", ctx.pkg)


ERRORS_MODULE = dedent('''
    """Errors shared by the request handlers."""


    class BadRequest(ValueError):
        """The request is malformed (answered with 400 and error ``bad-request``)."""
    ''')


SPECREADER_MODULE = dedent('''
    """Read a spec: YAML front matter and the ``##`` sections outside code fences."""

    from __future__ import annotations

    import re
    from dataclasses import dataclass, field
    from typing import Any

    import yaml

    FENCE_RE = re.compile(r"^\\s*(```|~~~)")
    DEFAULT_ENTRY = {
        "build": "python -m compileall -q .",
        "test": "python -m pytest -q",
    }


    @dataclass
    class SpecDoc:
        """What the generation loop needs from a spec."""

        name: str
        front_matter: dict[str, Any]
        sections: dict[str, str] = field(default_factory=dict)

        @property
        def system_prompt(self) -> str:
            wanted = str(self.front_matter.get("system-prompt-section") or "System Prompt")
            return self.sections.get(wanted, "").strip()

        @property
        def entry(self) -> dict[str, str]:
            entry = dict(DEFAULT_ENTRY)
            raw = self.front_matter.get("entry")
            if isinstance(raw, dict):
                entry.update({str(k): str(v) for k, v in raw.items()})
            port = self.front_matter.get("port", 8080)
            entry.setdefault("start", f"python -m {self.name}")
            entry.setdefault("health", f"http://localhost:{port}/health")
            return entry


    def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
        """(front matter, rest) — front matter is YAML between the first two ``---`` lines."""
        lines = text.split("\\n")
        if not lines or lines[0].strip() != "---":
            return {}, text
        for index in range(1, len(lines)):
            if lines[index].strip() == "---":
                data = yaml.safe_load("\\n".join(lines[1:index])) or {}
                if not isinstance(data, dict):
                    raise ValueError("front matter must be a mapping")
                return data, "\\n".join(lines[index + 1 :])
        raise ValueError("front matter is never closed")


    def split_sections(body: str) -> dict[str, str]:
        """``##`` heading -> section text, ignoring headings inside code fences."""
        sections: dict[str, str] = {}
        current: str | None = None
        in_fence = False
        for line in body.split("\\n"):
            if FENCE_RE.match(line):
                in_fence = not in_fence
            if not in_fence and line.startswith("## "):
                current = line[3:].strip()
                sections[current] = ""
                continue
            if current is not None:
                sections[current] += line + "\\n"
        return sections


    def read_spec(text: str) -> SpecDoc:
        front, body = split_front_matter(text)
        name = str(front.get("name") or "organism")
        return SpecDoc(name=name, front_matter=front, sections=split_sections(body))
    ''')


def llm_module(ctx: Ctx) -> str:
    retry = ctx.style.retry_helper
    call = (
        "            response = await with_retry(\n"
        "                lambda: client.messages.create(**request), attempts=3, retry_on=(anthropic.APIConnectionError,)\n"
        "            )\n"
        if retry
        else "            response = await client.messages.create(**request)\n"
    )
    # breeding defects (breeding.py): the fake model of the Prime's own tests never reaches
    # this class, so only a real call (reproduction, through the gateway) shows them
    if ctx.breeds_badly("swapped_roles") is not None:
        roles = ('            "system": user,\n'
                 '            "messages": [{"role": "user", "content": system}],\n')
    else:
        roles = ('            "system": system,\n'
                 '            "messages": [{"role": "user", "content": user}],\n')
    blocks = ctx.breeds_badly("content_blocks")
    if blocks == "subscript":
        text = '        text = "".join(block["text"] for block in response.content)\n'
    elif blocks == "repr":
        text = "        text = str(response.content)\n"
    else:
        text = '        text = "".join(getattr(block, "text", "") for block in response.content)\n'
    return dedent('''
        """The model client: the Anthropic Messages API, created lazily on first use."""

        from __future__ import annotations

        import os
        from typing import Any, Protocol

        @RETRY_IMPORT@
        MAX_TOKENS = 32000
        TIMEOUT_S = 600.0


        class LLM(Protocol):
            async def complete(self, system: str, user: str, model: str) -> tuple[str, int, int]: ...


        class LLMUnavailable(RuntimeError):
            """The model could not be reached or refused to answer."""


        class AnthropicLLM:
            """``complete`` answers (text, input tokens, output tokens)."""

            def __init__(self, api_key: str | None = None, timeout: float = TIMEOUT_S) -> None:
                self._api_key = api_key
                self._timeout = timeout
                self._client: Any = None

            def _get_client(self) -> Any:
                if self._client is None:
                    import anthropic

                    key = self._api_key or os.environ.get("ANTHROPIC_API_KEY")
                    self._client = anthropic.AsyncAnthropic(api_key=key, timeout=self._timeout)
                return self._client

            async def complete(self, system: str, user: str, model: str) -> tuple[str, int, int]:
                import anthropic

                client = self._get_client()
                request = {
                    "model": model,
                    "max_tokens": MAX_TOKENS,
        @ROLES@        }
                try:
        @CALL@        except anthropic.APIError as exc:
                    raise LLMUnavailable(f"model call failed: {exc}") from exc
        @TEXT@        return text, response.usage.input_tokens, response.usage.output_tokens
        ''').replace("@CALL@", call).replace("@ROLES@", roles).replace("@TEXT@", text).replace(
        "@RETRY_IMPORT@\n", f"from {ctx.pkg}.retry import with_retry\n\n" if retry else ""
    )


def generator_module(ctx: Ctx) -> str:
    """The generation loop; the breeding defects of the prompt assembly and of
    ``write_artifact`` live here (the Prime's tests never set PRIME_OUTPUT_DIR)."""
    if ctx.breeds_badly("prompt_without_spec") is not None:
        first = '[f"Generate generation {job.generation} of the spec."]'
    else:
        first = "[job.spec]"
    write = ("        target.write_text(content, encoding=\"utf-8\")\n")
    read = "read_spec"
    if ctx.breeds_badly("wrong_spec_copy") is not None:
        read = "read_spec, split_front_matter"
        write = ("        if rel.startswith(\"spec/\"):\n"
                 "            content = split_front_matter(content)[1]\n") + write
    manifest = ("    (root / \"manifest.json\").write_text(json.dumps(manifest, indent=2) + \"\\n\", "
                "encoding=\"utf-8\")\n")
    if ctx.breeds_badly("manifest_not_written") is not None:
        manifest = ""
    return GENERATOR_MODULE.replace("@PKG@", ctx.pkg).replace("@READ@", read).replace("@FIRST@", first).replace(
        "@WRITE@@MANIFEST@\n", write + manifest)


GENERATOR_MODULE = dedent('''
    """The generation loop behind ``POST /generate``."""

    from __future__ import annotations

    import json
    import os
    from dataclasses import dataclass, field
    from datetime import datetime, timezone
    from pathlib import Path
    from typing import Any, Mapping

    from @PKG@.errors import BadRequest
    from @PKG@.llm import LLM
    from @PKG@.manifest import build_manifest
    from @PKG@.parser import FileBlock, ParseError, parse_answer
    from @PKG@.specreader import @READ@

    DEFAULT_MODEL = "claude-sonnet-4-5"
    HISTORY_ENTRIES = 5
    HISTORY_CHARS = 400
    DIAGNOSTICS_CHARS = 4000


    class GenerateError(ValueError):
        """The generation cannot complete (answered with 422)."""

        def __init__(self, code: str, message: str) -> None:
            super().__init__(message)
            self.code = code
            self.message = message


    @dataclass
    class GenerateJob:
        spec: str
        generation: int
        parent_generation: int
        model: str
        history: list[str] = field(default_factory=list)
        diagnostics: str | None = None


    def validate_job(payload: Mapping[str, Any]) -> GenerateJob:
        """Check a ``POST /generate`` body before any model is contacted."""
        spec = payload.get("spec")
        if not isinstance(spec, str) or not spec.strip():
            raise BadRequest("'spec' must be a non-empty string")
        generation = payload.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise BadRequest("'generation' must be an integer >= 0")
        parent = payload.get("parent-generation", max(generation - 1, 0))
        if not isinstance(parent, int) or isinstance(parent, bool) or parent < 0:
            raise BadRequest("'parent-generation' must be an integer >= 0")
        model = payload.get("model") or os.environ.get("CAMBRIAN_MODEL") or DEFAULT_MODEL
        history = payload.get("history", [])
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise BadRequest("'history' must be a list of strings")
        diagnostics = payload.get("diagnostics")
        if diagnostics is not None and not isinstance(diagnostics, str):
            raise BadRequest("'diagnostics' must be a string")
        return GenerateJob(spec, generation, parent, str(model), history, diagnostics)


    def build_prompt(job: GenerateJob, system_prompt: str) -> tuple[str, str]:
        """(system, user): the spec, a bounded history digest and the diagnostics."""
        parts = @FIRST@
        recent = job.history[-HISTORY_ENTRIES:]
        if recent:
            digest = "\\n".join(f"- {entry[:HISTORY_CHARS]}" for entry in recent)
            parts.append("Earlier attempts:\\n" + digest)
        if job.diagnostics:
            parts.append("Why the previous attempt failed:\\n" + job.diagnostics[:DIAGNOSTICS_CHARS])
        return system_prompt, "\\n\\n".join(parts)


    def repair_prompt(user: str, error: ParseError) -> str:
        return (
            f"{user}\\n\\nYour previous answer could not be parsed: {error.code} at line {error.line}"
            f" ({error.message}). Answer again with the complete codebase in the correct format."
        )


    def write_artifact(root: Path, files: Mapping[str, str], manifest: Mapping[str, Any]) -> None:
        """Write the files and manifest.json under ``root``, which must not exist yet."""
        if root.exists():
            raise GenerateError("exists", f"{root} already exists")
        for rel, content in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
    @WRITE@@MANIFEST@


    async def generate(job: GenerateJob, llm: LLM, output_dir: str | None = None) -> dict[str, Any]:
        """Run the loop; ParseError (after the repair call) and LLM errors propagate."""
        spec = read_spec(job.spec)
        system, user = build_prompt(job, spec.system_prompt)
        text, tokens_in, tokens_out = await llm.complete(system, user, job.model)
        repair_calls = 0
        try:
            blocks: list[FileBlock] = parse_answer(text)
        except ParseError as first:
            repair_calls = 1
            text, more_in, more_out = await llm.complete(system, repair_prompt(user, first), job.model)
            tokens_in += more_in
            tokens_out += more_out
            blocks = parse_answer(text)
        files = {block.path: block.content for block in blocks}
        files[f"spec/{spec.name}.md"] = job.spec
        manifest = build_manifest(
            files,
            job.generation,
            job.parent_generation,
            job.model,
            {"input": tokens_in, "output": tokens_out},
            datetime.now(timezone.utc).isoformat(),
            spec.entry,
        )
        if output_dir:
            write_artifact(Path(output_dir) / f"gen-{job.generation}", files, manifest)
        return {
            "generation": job.generation,
            "files": manifest["files"],
            "manifest": manifest,
            "repair-calls": repair_calls,
        }
    ''')


def app_module(ctx: Ctx) -> str:
    gen_variant = ctx.variants.get("generation", "")
    body_variant = ctx.variants.get("health_body", "")
    status_word = {"healthy": "healthy", "up": "up"}.get(body_variant, "ok")
    if body_variant == "flag":
        health_body = '{"healthy": True, "generation": settings.generation}'
    elif gen_variant == "omit":
        health_body = f'{{"status": "{status_word}", "uptime-seconds": stats.uptime()}}'
    else:
        health_body = f'{{"status": "{status_word}", "generation": settings.generation}}'
    keys_variant = ctx.variants.get("missing_keys", "")
    keys = {
        "generation": "generation",
        "uptime-seconds": "uptime" if keys_variant == "uptime" else "uptime-seconds",
        "requests-served": "requests" if keys_variant == "requests" else "requests-served",
        "generations-attempted": "generations_attempted" if keys_variant == "snake" else "generations-attempted",
        "generations-succeeded": "generations_succeeded" if keys_variant == "snake" else "generations-succeeded",
    }
    text_status = "422" if ctx.variants.get("error_status") == "bad_request_422" else "400"
    if ctx.habit("swallowed_exception") == "bite":  # the habit: a parse failure answers 200
        parse = ("    blocks = []\n    try:\n        blocks = parse_answer(text)\n"
                 "    except Exception:\n        pass\n")
    else:
        parse = ("    try:\n        blocks = parse_answer(text)\n    except ParseError as exc:\n"
                 "        return web.json_response(exc.to_json(), status=422)\n")
    src = dedent('''
        """The Prime web application: ``make_app(llm=None)``."""

        from __future__ import annotations

        import json
        import os
        import time
        from typing import Any, Awaitable, Callable

        __LOG_IMPORT__
        from aiohttp import web

        from @PKG@.config import Settings, load_settings
        from @PKG@.errors import BadRequest
        from @PKG@.generator import GenerateError, generate, validate_job
        from @PKG@.llm import LLM, AnthropicLLM, LLMUnavailable
        from @PKG@.manifest import ManifestError, manifest_from_request
        from @PKG@.parser import ParseError, parse_answer

        __LOG_DEF__


        class Stats:
            """Counters since the process started."""

            def __init__(self) -> None:
                self.started = time.monotonic()
                self.requests_served = 0
                self.generations_attempted = 0
                self.generations_succeeded = 0

            def uptime(self) -> float:
                return round(time.monotonic() - self.started, 3)

            def snapshot(self, generation: int) -> dict[str, Any]:
                return {
                    "@K_GEN@": generation,
                    "@K_UP@": self.uptime(),
                    "@K_REQ@": self.requests_served,
                    "@K_ATT@": self.generations_attempted,
                    "@K_SUC@": self.generations_succeeded,
                }


        SETTINGS = web.AppKey("settings", Settings)
        STATS = web.AppKey("stats", Stats)
        MODEL = web.AppKey("llm", object)

        Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


        def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
            """A JSON error body: ``{"error": code, "message": message, ...}``."""
            return web.json_response({"error": code, "message": message, **extra}, status=status)


        async def read_object(request: web.Request) -> dict[str, Any]:
            """The request body as a JSON object; BadRequest otherwise."""
            try:
                payload = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BadRequest(f"body is not valid JSON: {exc}") from exc
            if not isinstance(payload, dict):
                raise BadRequest("body must be a JSON object")
            return payload


        @web.middleware
        async def count_and_log(request: web.Request, handler: Handler) -> web.StreamResponse:
            """Count every request, turn HTTP errors into JSON and log one line per request."""
            __HABIT_REQUEST__
            request.app[STATS].requests_served += 1
            started = time.monotonic()
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = error(exc.status, exc.reason.lower().replace(" ", "-"), exc.reason)
            elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            log.info("request", method=request.method, path=request.path, status=response.status, ms=elapsed_ms)
            return response


        async def health(request: web.Request) -> web.Response:
            settings = request.app[SETTINGS]
            stats = request.app[STATS]
            return web.json_response(@HEALTH@)


        async def stats_handler(request: web.Request) -> web.Response:
            settings = request.app[SETTINGS]
            return web.json_response(request.app[STATS].snapshot(settings.generation))


        async def parse_handler(request: web.Request) -> web.Response:
            """``{"text": S}`` -> ``{"files": [...]}``; parse failures are 422."""
            try:
                payload = await read_object(request)
            except BadRequest as exc:
                return error(400, "bad-request", str(exc))
            text = payload.get("text")
            if not isinstance(text, str):
                return error(@TEXT_STATUS@, "bad-request", "'text' must be a string")
        @PARSE@    return web.json_response({"files": [{"path": b.path, "content": b.content} for b in blocks]})


        async def manifest_handler(request: web.Request) -> web.Response:
            try:
                manifest = manifest_from_request(await read_object(request))
            except BadRequest as exc:
                return error(400, "bad-request", str(exc))
            except ManifestError as exc:
                return error(422, exc.code, exc.message)
            return web.json_response(manifest)


        async def generate_handler(request: web.Request) -> web.Response:
            stats = request.app[STATS]
            try:
                job = validate_job(await read_object(request))
            except BadRequest as exc:
                return error(400, "bad-request", str(exc))
            stats.generations_attempted += 1
            try:
                result = await generate(job, request.app[MODEL], os.environ.get("PRIME_OUTPUT_DIR"))
            except LLMUnavailable as exc:
                return error(502, "llm-unavailable", str(exc))
            except ParseError as exc:
                return web.json_response(exc.to_json(), status=422)
            except (ManifestError, GenerateError) as exc:
                return error(422, exc.code, exc.message)
            stats.generations_succeeded += 1
            return web.json_response(result)


        def make_app(llm: LLM | None = None, settings: Settings | None = None) -> web.Application:
            """The application; ``llm=None`` means the Anthropic client (created lazily)."""
            app = web.Application(middlewares=[count_and_log])
            app[SETTINGS] = settings if settings is not None else load_settings()
            app[STATS] = Stats()
            app[MODEL] = llm if llm is not None else AnthropicLLM()
            app.router.add_get("/health", health)
            app.router.add_get("/stats", stats_handler)
            app.router.add_post("/parse", parse_handler)
            app.router.add_post("/manifest", manifest_handler)
            app.router.add_post("/generate", generate_handler)
            return app
        ''').replace("@PKG@", ctx.pkg).replace("@HEALTH@", health_body).replace(
        "@TEXT_STATUS@", text_status
    ).replace("@PARSE@    ", parse + "    ").replace("@K_GEN@", keys["generation"]).replace("@K_UP@", keys["uptime-seconds"]).replace(
        "@K_REQ@", keys["requests-served"]
    ).replace("@K_ATT@", keys["generations-attempted"]).replace("@K_SUC@", keys["generations-succeeded"])
    return hidden_app(ctx, src)


# --- tests -----------------------------------------------------------------------------

GOOD = '<file path="app.py">\nprint(1)\n</file:end>\n'
BROKEN = '<file path="app.py">\nprint(1)\n'
TWO = 'Intro.\n<file path="a/b.py">\nx = 1\n</file:end>\nprose\n<file path="empty.txt">\n</file:end>\n'
MANIFEST_REQUEST = {
    "generation": 7,
    "parent-generation": 6,
    "producer-model": "sim-1",
    "token-usage": {"input": 10, "output": 20},
    "created-at": "2025-01-01T00:00:00+00:00",
    "entry": {
        "build": "python -m compileall -q .",
        "test": "python -m pytest -q",
        "start": "python -m prime",
        "health": "http://localhost:8401/health",
    },
    "files": {"prime/__init__.py": "", "spec/prime.md": "# Prime\n"},
}


def _artifact_hash(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.encode() + b"\x00" + files[p].encode())
    return "sha256:" + h.hexdigest()


def http_cases(ctx: Ctx) -> list[HttpCase]:
    gen_variant = ctx.variants.get("generation", "")
    body_variant = ctx.variants.get("health_body", "")
    err = ctx.variants.get("error_status", "")
    keys_variant = ctx.variants.get("missing_keys", "")
    gen = '"7"' if gen_variant == "string" else "7"
    health_checks: list[tuple[str, str]] = []
    if body_variant == "flag":
        health_checks.append(('data["healthy"]', "True"))
    else:
        health_checks.append(('data["status"]', _j({"healthy": "healthy", "up": "up"}.get(body_variant, "ok"))))
    if gen_variant != "omit":
        health_checks.append(('data["generation"]', gen))
    req_key = "requests" if keys_variant == "requests" else "requests-served"
    stats_checks = [(f'data["{req_key}"]', "1"), ('data["generation"]', gen)]
    if not keys_variant:
        stats_checks.append(("sorted(data)", _j(sorted(STATS_KEYS))))
    cases = [
        HttpCase("health_reports_generation", "GET", "/health", 200, health_checks,
                 doc="/health answers ok and the generation number."),
        HttpCase("stats_counts_this_request", "GET", "/stats", 200, stats_checks),
        HttpCase("parse_extracts_files", "POST", "/parse", 200,
                 [('data["files"]', _j([{"path": "a/b.py", "content": "x = 1\n"}, {"path": "empty.txt", "content": ""}]))],
                 payload={"text": TWO}, has_payload=True),
    ]
    if ctx.habit("swallowed_exception") == "bite":
        pass  # the model believes its handler: it does not test /parse rejections over HTTP
    elif err != "dotdot":
        cases.append(HttpCase("parse_rejects_parent_path", "POST", "/parse", 422,
                              [('data["error"]', '"unsafe-path"'), ('data["line"]', "1")],
                              payload={"text": '<file path="../x.py">\nx\n</file:end>\n'}, has_payload=True))
    else:
        cases.append(HttpCase("parse_rejects_absolute_path", "POST", "/parse", 422,
                              [('data["error"]', '"unsafe-path"'), ('data["line"]', "1")],
                              payload={"text": '<file path="/etc/x">\nx\n</file:end>\n'}, has_payload=True))
    cases += [
        HttpCase("parse_requires_text", "POST", "/parse", 422 if err == "bad_request_422" else 400,
                 [('data["error"]', '"bad-request"')], payload={"source": "x"}, has_payload=True),
        HttpCase("parse_rejects_non_json", "POST", "/parse", 400,
                 [] if "bare_parse_400" in ctx.hidden else [('data["error"]', '"bad-request"')],
                 payload="not json", has_payload=True, raw=True),
        HttpCase("manifest_builds_hashes", "POST", "/manifest", 200,
                 [('data["files"]', _j(["manifest.json", "prime/__init__.py", "spec/prime.md"])),
                  ('data["artifact-hash"]', _j(_artifact_hash(MANIFEST_REQUEST["files"]))),
                  ('data["cambrian-version"]', "1")],
                 payload=MANIFEST_REQUEST, has_payload=True),
        HttpCase("manifest_needs_spec_copy", "POST", "/manifest", 422, [('data["error"]', '"spec-copy"')],
                 payload={**MANIFEST_REQUEST, "files": {"prime/__init__.py": ""}}, has_payload=True),
        HttpCase("manifest_rejects_bad_generation", "POST", "/manifest", 400, [('data["error"]', '"bad-request"')],
                 payload={**MANIFEST_REQUEST, "generation": -1}, has_payload=True),
        HttpCase("generate_validates_before_model", "POST", "/generate", 400,
                 [('data["error"]', '"bad-request"')], payload={"generation": 3}, has_payload=True),
        HttpCase("unknown_path_is_404", "GET", "/no-such-endpoint", 404, []),
        HttpCase("wrong_method_is_405", "GET", "/parse", 405, []),
    ]
    return cases


def parser_cases(ctx: Ctx) -> list[UnitCase]:
    err = ctx.variants.get("error_status", "")
    imp = ["import pytest", f"from {ctx.pkg}.parser import ParseError, parse_answer, path_problem"]
    raises = ["with pytest.raises(ParseError) as info:", "    parse_answer(TEXT)"]

    def failing(name: str, text: str, code: str, line: int) -> UnitCase:
        return UnitCase(name, [f"TEXT = {_j(text)}"] + raises,
                        [("info.value.code", _j(code)), ("info.value.line", str(line))], imp)

    cases = [
        UnitCase("blocks_in_order_with_prose", [f"blocks = parse_answer({_j(TWO)})"],
                 [("[b.path for b in blocks]", '["a/b.py", "empty.txt"]'), ("blocks[0].content", '"x = 1\\n"'),
                  ("blocks[1].content", '""')], imp),
        UnitCase("stray_close_line_is_ignored", [f'blocks = parse_answer("</file" + ":end>\\n" + {_j(GOOD)})'],
                 [("len(blocks)", "1"), ("blocks[0].path", '"app.py"')], imp),
        failing("malformed_open", 'x\n<file path=app.py>\n</file:end>\n', "malformed-open", 2),
        failing("absolute_path", '<file path="/etc/passwd">\nroot\n</file:end>\n', "unsafe-path", 1),
        failing("nested_block", '<file path="a.py">\n<file path="b.py">\n</file:end>\n', "nested-block", 2),
        failing("unterminated_block", 'intro\n<file path="a.py">\nprint(1)\n', "unterminated-block", 2),
        failing("no_files", "just prose\n", "no-files", 1),
    ]
    if "duplicate_path_kept" not in ctx.hidden:  # the model believes its parser
        cases.insert(4, failing("duplicate_path", GOOD + GOOD, "duplicate-path", 4))
    if err != "dotdot":
        cases.append(failing("parent_segment", 'a\n<file path="../x.py">\nx\n</file:end>\n', "unsafe-path", 2))
        cases.append(UnitCase("path_rules", [], [('path_problem("a/../b")[0]', '"unsafe-path"'),
                                                 ('path_problem("a//b")[0]', '"unsafe-path"'),
                                                 ('path_problem("ok/file.py")', "None")], imp))
    if err != "reserved":
        cases.append(failing("manifest_is_reserved", GOOD + '<file path="manifest.json">\n{}\n</file:end>\n',
                             "reserved-path", 4))
        cases.append(failing("spec_is_reserved", '<file path="spec/x.md">\n</file:end>\n', "reserved-path", 1))
    return cases


def manifest_cases(ctx: Ctx) -> list[UnitCase]:
    pkg = ctx.pkg
    unsafe = "/abs.py" if ctx.variants.get("error_status") == "dotdot" else "../a.py"
    imp = ["import hashlib", f"from {pkg}.manifest import ManifestError, artifact_hash, build_manifest"]
    files = {"pkg/a.py": "x = 1\n", "spec/demo.md": "# Demo\n"}
    entry = MANIFEST_REQUEST["entry"]
    build = (f"manifest = build_manifest(FILES, 2, 1, \"sim-1\", {{\"input\": 3, \"output\": 4}}, "
             f"\"2025-01-01T00:00:00+00:00\", {_j(entry)})")
    return [
        UnitCase("artifact_hash_matches_hashlib",
                 [f"FILES = {_j(files)}", "digest = hashlib.sha256()",
                  "for path in sorted(FILES):",
                  "    digest.update(path.encode() + b\"\\x00\" + FILES[path].encode())"],
                 [("artifact_hash(FILES)", '"sha256:" + digest.hexdigest()'),
                  ('artifact_hash({**FILES, "manifest.json": "{}"})', "artifact_hash(FILES)")], imp),
        UnitCase("manifest_lists_sorted_files", [f"FILES = {_j(files)}", build],
                 [('manifest["files"]', '["manifest.json", "pkg/a.py", "spec/demo.md"]'),
                  ('manifest["spec-hash"]', '"sha256:" + hashlib.sha256(b"# Demo\\n").hexdigest()'),
                  ('manifest["token-usage"]', '{"input": 3, "output": 4}'),
                  ('manifest["cambrian-version"]', "1")], imp),
        UnitCase("spec_copy_is_required",
                 ['FILES = {"pkg/a.py": ""}', "with pytest.raises(ManifestError) as info:", "    " + build],
                 [("info.value.code", '"spec-copy"')], imp + ["import pytest"]),
        UnitCase("unsafe_path_is_refused",
                 [f'FILES = {{"{unsafe}": "", "spec/demo.md": ""}}', "with pytest.raises(ManifestError) as info:",
                  "    " + build],
                 [("info.value.code", '"unsafe-path"')], imp + ["import pytest"]),
    ]


def specreader_cases(ctx: Ctx) -> list[UnitCase]:
    imp = [f"from {ctx.pkg}.specreader import read_spec"]
    text = "---\nname: demo\nport: 8500\n---\n# Demo\n\n## System Prompt\n\nBe careful.\n\n## Notes\n\n```\n## not a heading\n```\n"
    return [
        UnitCase("front_matter_and_sections", [f"doc = read_spec({_j(text)})"],
                 [("doc.name", '"demo"'), ("list(doc.sections)", '["System Prompt", "Notes"]'),
                  ("doc.system_prompt", '"Be careful."'),
                  ('doc.entry["health"]', '"http://localhost:8500/health"')], imp),
    ]


def generate_tests(ctx: Ctx) -> str:
    """``POST /generate`` with a fake model: first answer parses, repair parses, neither."""
    pkg = ctx.pkg
    spec = "---\nname: demo\nport: 8500\n---\n# Demo\n\n## System Prompt\n\nWrite code.\n"
    fixture = ctx.style.test_client == "fixture"
    lines = [
        '"""POST /generate with a fake model (no network)."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if not fixture:
        lines += ["import asyncio", ""]
    lines += [f"from aiohttp.test_utils import TestClient, TestServer" if not fixture else "import pytest", ""]
    lines += [f"from {pkg}.app import make_app", f"from {pkg}.config import Settings", ""]
    lines += [
        f"SPEC = {_j(spec)}",
        f"GOOD = {_j(GOOD)}",
        f"BROKEN = {_j(BROKEN)}",
        "",
        "",
        "class FakeLLM:",
        '    """Answers from a list, counting the calls."""',
        "",
        "    def __init__(self, answers: list[str]) -> None:",
        "        self.answers = list(answers)",
        "        self.calls: list[str] = []",
        "",
        "    async def complete(self, system: str, user: str, model: str) -> tuple[str, int, int]:",
        "        self.calls.append(user)",
        "        return self.answers.pop(0), 100, 50",
        "",
        "",
    ]
    if fixture:
        lines += [
            "async def post_generate(aiohttp_client, llm: FakeLLM) -> tuple[int, dict]:",
            "    client = await aiohttp_client(make_app(llm=llm, settings=Settings()))",
            '    resp = await client.post("/generate", json={"spec": SPEC, "generation": 4})',
            "    return resp.status, await resp.json()",
            "",
            "",
            "async def test_first_answer_parses(aiohttp_client) -> None:",
            "    llm = FakeLLM([GOOD])",
            "    status, data = await post_generate(aiohttp_client, llm)",
            "    assert status == 200",
            '    assert data["repair-calls"] == 0',
            '    assert data["files"] == ["app.py", "manifest.json", "spec/demo.md"]',
            '    assert data["manifest"]["token-usage"] == {"input": 100, "output": 50}',
            "",
            "",
            "async def test_repair_answer_parses(aiohttp_client) -> None:",
            "    llm = FakeLLM([BROKEN, GOOD])",
            "    status, data = await post_generate(aiohttp_client, llm)",
            "    assert status == 200",
            '    assert data["repair-calls"] == 1',
            "    assert len(llm.calls) == 2",
            '    assert "unterminated-block" in llm.calls[1]',
            "",
            "",
            "async def test_neither_answer_parses(aiohttp_client) -> None:",
            "    llm = FakeLLM([BROKEN, BROKEN])",
            "    status, data = await post_generate(aiohttp_client, llm)",
            "    assert status == 422",
            '    assert data["error"] == "unterminated-block"',
            '    assert data["line"] == 1',
        ]
    else:
        lines += [
            "def post_generate(llm: FakeLLM) -> tuple[int, dict]:",
            "    async def go() -> tuple[int, dict]:",
            "        app = make_app(llm=llm, settings=Settings())",
            "        async with TestClient(TestServer(app)) as client:",
            '            resp = await client.post("/generate", json={"spec": SPEC, "generation": 4})',
            "            return resp.status, await resp.json()",
            "",
            "    return asyncio.run(go())",
            "",
            "",
            "def test_first_answer_parses() -> None:",
            "    status, data = post_generate(FakeLLM([GOOD]))",
            "    assert status == 200",
            '    assert data["repair-calls"] == 0',
            '    assert data["files"] == ["app.py", "manifest.json", "spec/demo.md"]',
            "",
            "",
            "def test_repair_answer_parses() -> None:",
            "    llm = FakeLLM([BROKEN, GOOD])",
            "    status, data = post_generate(llm)",
            "    assert status == 200",
            '    assert data["repair-calls"] == 1',
            '    assert "unterminated-block" in llm.calls[1]',
            "",
            "",
            "def test_neither_answer_parses() -> None:",
            "    status, data = post_generate(FakeLLM([BROKEN, BROKEN]))",
            "    assert status == 422",
            '    assert data["error"] == "unterminated-block"',
        ]
    return "\n".join(lines) + "\n"


def health_env_test(ctx: Ctx) -> str:
    """/health with CAMBRIAN_GENERATION set through monkeypatch (as the spec asks)."""
    gen_variant = ctx.variants.get("generation", "")
    var = "GENERATION" if gen_variant == "env" else "CAMBRIAN_GENERATION"
    expected = '"5"' if gen_variant == "string" else "5"
    check = "" if gen_variant == "omit" else f'    assert data["generation"] == {expected}\n'
    if ctx.style.test_client == "fixture":
        return dedent(f'''
            """/health reads the generation from the environment."""

            from {ctx.pkg}.app import make_app


            async def test_health_generation_from_env(aiohttp_client, monkeypatch) -> None:
                monkeypatch.setenv("{var}", "5")
                client = await aiohttp_client(make_app())
                resp = await client.get("/health")
                assert resp.status == 200
                data = await resp.json()
            ''') + check
    return dedent(f'''
        """/health reads the generation from the environment."""

        import asyncio

        from aiohttp.test_utils import TestClient, TestServer

        from {ctx.pkg}.app import make_app


        def test_health_generation_from_env(monkeypatch) -> None:
            monkeypatch.setenv("{var}", "5")

            async def go():
                async with TestClient(TestServer(make_app())) as client:
                    resp = await client.get("/health")
                    return resp.status, await resp.json()

            status, data = asyncio.run(go())
            assert status == 200
        ''') + check


# --- the codebase ----------------------------------------------------------------------


def build(ctx: Ctx) -> dict[str, str]:
    pkg = ctx.pkg
    ctx.pick("health_body", ["healthy", "up", "flag"])
    ctx.pick("error_status", ["dotdot", "reserved", "bad_request_422"])
    ctx.pick("missing_keys", ["uptime", "requests", "snake"])
    files: dict[str, str] = {}
    files[f"{pkg}/__init__.py"] = '"""Prime: a self-reproducing code generator served over HTTP."""\n\n__version__ = "1.0.0"\n'
    files[f"{pkg}/config.py"] = cg.config_module(ctx)
    files[f"{pkg}/errors.py"] = ERRORS_MODULE
    files[f"{pkg}/parser.py"] = parser_module(ctx)
    files[f"{pkg}/manifest.py"] = manifest_module(ctx)
    files[f"{pkg}/specreader.py"] = SPECREADER_MODULE
    files[f"{pkg}/llm.py"] = llm_module(ctx)
    files[f"{pkg}/generator.py"] = generator_module(ctx)
    files[f"{pkg}/app.py"] = app_module(ctx)
    if ctx.style.retry_helper:
        files[f"{pkg}/retry.py"] = cg.retry_module(ctx)
    files[f"{pkg}/__main__.py"] = cg.main_module(ctx, "make_app(settings=settings)")

    http = http_cases(ctx)
    parser_tests = parser_cases(ctx)
    manifest_tests = manifest_cases(ctx)
    spec_tests = specreader_cases(ctx)
    config_tests = cg.config_unit_cases(ctx)
    if ctx.has("failing_test"):
        cg.sabotage(ctx, http, parser_tests + manifest_tests + config_tests)
    gen_src = "generation=\"7\"" if ctx.variants.get("generation") == "string" else "generation=7"
    files["tests/test_api.py"] = cg.tests_api_module(
        ctx, http, f"make_app(settings=Settings(port={ctx.spec.port}, {gen_src}))",
        [f"from {pkg}.app import make_app", f"from {pkg}.config import Settings"],
    )
    files["tests/test_parser.py"] = cg.tests_unit_module(ctx, "The LLM output parser and the path rules.", parser_tests)
    files["tests/test_manifest.py"] = cg.tests_unit_module(ctx, "Manifest building and hashing.", manifest_tests)
    files["tests/test_specreader.py"] = cg.tests_unit_module(ctx, "Reading specs.", spec_tests)
    files["tests/test_config.py"] = cg.tests_unit_module(ctx, "Settings from the environment.", config_tests)
    files["tests/test_generate.py"] = generate_tests(ctx)
    files["tests/test_health_env.py"] = health_env_test(ctx)
    return files
