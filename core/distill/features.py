"""Code features of a generation's Python files, extracted with libcst (DESIGN §10).

Every feature is a boolean per generation ("present anywhere in its code"), backed by
per-file counts and by the lines where it was seen (used as evidence snippets). The
catalogue lives in :data:`FEATURES`; ``README.md`` beside this file documents each one.

Files that libcst cannot parse are never dropped silently: they are returned as
:class:`UnparsedFile` records (generation, file, line, error) and counted.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

# --- catalogue ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Feature:
    name: str
    #: how the feature relates to good practice: "good" features are proposed only when
    #: they help, "bad" ones only when they hurt, "neutral" ones in either direction
    polarity: str
    scope: str  # code | tests | all: which files it looks at
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("monotonic_clock", "good", "all",
            "calls time.monotonic()/perf_counter() (durations measured on a monotonic clock)"),
    Feature("wall_clock_duration", "bad", "all",
            "time.time()/datetime.now() used in arithmetic, comparisons or start/deadline variables"),
    Feature("retry_backoff", "neutral", "all",
            "a loop that sleeps and handles exceptions, or a retry/backoff function or decorator"),
    Feature("bare_except", "bad", "all", "a bare `except:` clause"),
    Feature("broad_except", "bad", "all", "`except Exception` / `except BaseException`"),
    Feature("swallowed_exception", "bad", "all",
            "a bare or broad handler whose body is only pass / ... / continue"),
    Feature("specific_excepts", "good", "all",
            "has exception handlers and every one names a specific exception"),
    Feature("typed_functions", "good", "code",
            "at least 80% of parameters and returns of non-test functions are annotated"),
    Feature("pydantic_models", "neutral", "all", "a class derived from pydantic.BaseModel"),
    Feature("dataclasses", "neutral", "all", "a class decorated with @dataclasses.dataclass"),
    Feature("log_fstring", "bad", "all",
            "a logger call whose message is an f-string, str.format() or %-formatted string"),
    Feature("print_in_library", "bad", "code",
            "print() in library code (outside __main__.py, main()/cli() and the __main__ guard)"),
    Feature("blocking_in_async", "bad", "all",
            "a blocking call (time.sleep, requests, open, subprocess, urlopen) inside async def"),
    Feature("hardcoded_abs_path", "bad", "all",
            "a string literal holding an absolute filesystem path (/tmp/..., /workspace/..., C:\\...)"),
    Feature("hardcoded_port", "bad", "code",
            "a port number literal at a call site (port=8401, bind((host, 8401)), http://localhost:8401)"),
    Feature("env_config", "neutral", "code",
            "reads environment variables (any use of os.environ, os.getenv)"),
    Feature("unchecked_env_read", "bad", "code",
            "indexes os.environ[NAME] (KeyError when unset) outside a try or an `in os.environ` check"),
    Feature("unchecked_input", "bad", "code",
            "indexes request input without a check: request.headers/query/cookies[...], or a "
            "field of an awaited .json() body never checked with isinstance()"),
    Feature("unclosed_resource", "bad", "all",
            "open()/ClientSession()/Session() created outside a with/async with statement"),
    Feature("trivial_asserts", "bad", "tests",
            "assert True, assert <constant>, assert x == x, or a comparison of two literals"),
    Feature("weak_asserts", "bad", "tests", "assert x is not None, or assert <bare name>"),
    Feature("dense_asserts", "good", "tests",
            "test functions hold on average at least two assertions (assert or pytest.raises)"),
    Feature("docstrings", "neutral", "code",
            "at least half of the public functions, methods and classes of library code have a docstring"),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

#: Ratio thresholds for the coverage-style features.
TYPED_THRESHOLD = 0.8
DOCSTRING_THRESHOLD = 0.5
DENSE_ASSERTS_THRESHOLD = 2.0
#: Files larger than this are reported as unparsed rather than analysed.
MAX_FILE_BYTES = 1_000_000


def is_test_path(path: str) -> bool:
    """Same rule as the rig's (``rig.runner.is_test_file``): files under tests/ or test/,
    test_*.py, *_test.py and conftest.py are tests; everything else is library code."""
    base = path.rsplit("/", 1)[-1]
    return (path.startswith("tests/") or path.startswith("test/") or "/tests/" in path
            or base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py")


# --- results ----------------------------------------------------------------------------


@dataclass
class FileFeatures:
    """Counts and hit lines for one file. ``counts`` holds raw occurrences; the ratio
    features keep their numerators/denominators in ``ratios`` and count as present
    through :meth:`present`."""

    path: str
    is_test: bool
    counts: dict[str, int] = field(default_factory=dict)
    hits: dict[str, list[int]] = field(default_factory=dict)
    ratios: dict[str, list[int]] = field(default_factory=dict)  # name -> [num, den]
    qualifying: dict[str, int] = field(default_factory=dict)  # ratio features: units that qualify

    def hit(self, name: str, line: int | None) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        if line is not None:
            self.hits.setdefault(name, []).append(line)

    def ratio(self, name: str, num: int, den: int, qualifies: bool = False) -> None:
        r = self.ratios.setdefault(name, [0, 0])
        r[0] += num
        r[1] += den
        if qualifies:
            self.qualifying[name] = self.qualifying.get(name, 0) + 1


@dataclass
class UnparsedFile:
    generation: int
    file: str
    line: int | None
    error: str

    def to_json(self) -> dict[str, object]:
        return {"generation": self.generation, "file": self.file, "line": self.line, "error": self.error}


@dataclass
class GenerationFeatures:
    """Features of one generation: ``values`` is the boolean per feature, ``counts`` the
    summed per-file counts, ``files`` the per-file counts, ``hits`` (file, line) pairs."""

    number: int
    values: dict[str, bool]
    counts: dict[str, int]
    files: dict[str, dict[str, int]]
    hits: dict[str, list[tuple[str, int]]]
    ratios: dict[str, float | None]
    python_files: int
    unparsed: list[UnparsedFile]


# --- the visitor ----------------------------------------------------------------------------

_CLOCK_MONO = {"time.monotonic", "time.monotonic_ns", "time.perf_counter", "time.perf_counter_ns"}
_CLOCK_WALL = {"time.time", "time.time_ns", "datetime.datetime.now", "datetime.datetime.utcnow",
               "datetime.datetime.today"}
_TIMING_NAME = re.compile(r"(^|_)(start|started|begin|t0|t1|tic|toc|deadline|until|end|stop|elapsed|before|after|expires?)($|_)", re.I)
_SLEEPS = {"time.sleep", "asyncio.sleep", "trio.sleep", "anyio.sleep"}
_RETRY_NAME = re.compile(r"retry|retries|backoff", re.I)
_RETRY_DECORATORS = ("tenacity.", "backoff.", "retrying.")
_BROAD = {"Exception", "BaseException"}
_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
_BLOCKING_EXACT = {"time.sleep", "builtins.open", "io.open", "os.system", "urllib.request.urlopen",
                   "subprocess.run", "subprocess.call", "subprocess.check_call",
                   "subprocess.check_output", "socket.create_connection"}
_BLOCKING_PREFIX = ("requests.",)
_OPENERS = {"builtins.open", "io.open", "codecs.open", "gzip.open", "bz2.open", "lzma.open",
            "tempfile.NamedTemporaryFile", "tempfile.TemporaryFile"}
_SESSION_SUFFIXES = ("aiohttp.ClientSession", "requests.Session", "requests.session",
                     "httpx.Client", "httpx.AsyncClient")
_SESSION_BARE = {"ClientSession", "AsyncClient"}
_MANAGERS = {"enter_context", "enter_async_context", "closing", "aclosing", "push", "callback"}
_ABS_PATH = re.compile(r"^(/(tmp|home|Users|var|etc|opt|usr|root|srv|mnt|data|private|workspace|app|code)(/|$)"
                       r"|[A-Za-z]:\\)")
_LOCAL_URL = re.compile(r"https?://(localhost|127\.0\.0\.1|0\.0\.0\.0)(:\d{2,5})", re.I)
_PORT_KW = re.compile(r"^(port|server_port|listen_port)$", re.I)
_ENVIRON = {"os.environ", "os.environb"}
#: request attributes whose items may be missing (a subscript raises KeyError)
_REQUEST_MAPS = {"headers", "query", "cookies", "GET", "POST"}
_REQUEST_NAME = re.compile(r"(^|_)(request|req)$", re.I)
#: exceptions whose handler makes a subscript inside its ``try`` a checked read
_KEY_GUARDS = {"KeyError", "LookupError", "Exception", "BaseException"}


_BUILTINS = frozenset(dir(builtins))


def _qnames(visitor: "_Extractor", node: cst.CSTNode) -> set[str]:
    """The qualified name(s) an expression refers to, through the module's imports."""
    return visitor.qualify(node)


def _dotted(node: cst.BaseExpression) -> str:
    """``a.b.c`` for Name/Attribute chains, else ''."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr.value}" if head else ""
    return ""


def _is_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return True
    if isinstance(node, cst.UnaryOperation) and isinstance(node.expression, (cst.Integer, cst.Float)):
        return True
    return False


def _truthy_constant(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Name):
        return node.value == "True"
    if isinstance(node, cst.Integer):
        return node.evaluated_value != 0
    if isinstance(node, cst.Float):
        return node.evaluated_value != 0.0
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value not in ("", b"")
    if isinstance(node, cst.ConcatenatedString):
        return True
    return False


def _string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        v = node.evaluated_value
        return v if isinstance(v, str) else None
    if isinstance(node, cst.FormattedString):
        first = node.parts[0] if node.parts else None
        return first.value if isinstance(first, cst.FormattedStringText) else None
    return None


def _is_stringy(node: cst.BaseExpression) -> bool:
    return isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))


def _only_pass(body: cst.BaseSuite) -> bool:
    if isinstance(body, cst.SimpleStatementSuite):
        stmts: Sequence[cst.BaseSmallStatement] = body.body
    else:
        stmts = []
        for s in body.body:
            if not isinstance(s, cst.SimpleStatementLine):
                return False
            stmts = [*stmts, *s.body]
    for s in stmts:
        if isinstance(s, (cst.Pass, cst.Continue)):
            continue
        if isinstance(s, cst.Expr) and isinstance(s.value, (cst.Ellipsis, cst.SimpleString)):
            continue
        return False
    return True


def _handler_kind(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> str:
    """bare | broad | specific"""
    t = handler.type
    if t is None:
        return "bare"
    names = [t] if not isinstance(t, cst.Tuple) else [e.value for e in t.elements]
    for n in names:
        d = _dotted(n)
        if d.rsplit(".", 1)[-1] in _BROAD and d in (*_BROAD, "builtins.Exception", "builtins.BaseException"):
            return "broad"
    return "specific"


@dataclass
class _Frame:
    name: str
    is_async: bool
    in_class: bool
    exempt_print: bool


class _Extractor(cst.CSTVisitor):
    """One pass over a module.

    Names are resolved through the module's own imports as the pass meets them (``import
    time as t`` makes ``t.monotonic`` mean ``time.monotonic``; an unimported builtin such as
    ``open`` means ``builtins.open`` unless the module rebinds it). This is what
    ``QualifiedNameProvider`` would give for these checks at a fraction of its cost (its
    scope analysis dominated the run time). Positions come from ``PositionProvider``,
    resolved up front with ``MetadataWrapper.resolve`` and only when lines are wanted."""

    def __init__(self, result: FileFeatures, is_main_module: bool,
                 positions: Mapping[cst.CSTNode, Any] | None, rebound: set[str]):
        super().__init__()
        self.positions = positions
        self.aliases: dict[str, str] = {}
        self.in_import = False
        self.rebound = rebound
        self.r = result
        self.is_test = result.is_test
        self.is_main_module = is_main_module
        self.funcs: list[_Frame] = []
        self.scopes: list[str] = []  # "class" / "def", innermost last
        self.loops: list[dict[str, bool | int]] = []
        self.saved_loops: list[list[dict[str, bool | int]]] = []
        self.main_guard = 0
        self.managed: set[int] = set()
        self.handlers = {"bare": 0, "broad": 0, "specific": 0}
        self.test_fn_asserts: list[list[int]] = []  # per open test function: [asserts, line]
        self.stores: set[int] = set()  # subscripts that are assignment/del targets
        self.guards = 0  # depth of try bodies catching KeyError (or wider), `in os.environ` ifs
        self.try_guards: list[bool] = []
        # per open function: names bound to an awaited .json() body, names checked with
        # isinstance(), and unchecked subscripts of those names (name, node)
        self.bodies: list[dict[str, Any]] = []

    # helpers -----------------------------------------------------------------------
    def line(self, node: cst.CSTNode) -> int | None:
        return self.positions[node].start.line if self.positions is not None else None

    def mark(self, name: str, node: cst.CSTNode) -> None:
        """Remember where a qualifying unit is (no count): for ratio-style features."""
        line = self.line(node)
        if line is not None:
            self.r.hits.setdefault(name, []).append(line)

    def qualify(self, node: cst.CSTNode) -> set[str]:
        dotted = _dotted(node) if isinstance(node, cst.BaseExpression) else ""
        if not dotted:
            return set()
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            base = self.aliases[head]
            return {f"{base}.{rest}" if rest else base}
        if head in _BUILTINS and head not in self.rebound:
            return {f"builtins.{dotted}"}
        return {dotted}

    # imports --------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = _dotted(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = name
            else:
                top = name.split(".")[0]
                self.aliases[top] = top

    def leave_ImportFrom(self, original_node: cst.ImportFrom) -> None:
        self.in_import = False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.in_import = True
        if isinstance(node.names, cst.ImportStar):
            return
        module = _dotted(node.module) if node.module is not None else ""
        module = "." * len(node.relative) + module
        for alias in node.names:
            name = _dotted(alias.name)
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
            self.aliases[local] = f"{module}.{name}" if module and not module.endswith(".") else f"{module}{name}"

    def hit(self, name: str, node: cst.CSTNode) -> None:
        scope = BY_NAME[name].scope
        if scope == "code" and self.is_test or scope == "tests" and not self.is_test:
            return
        self.r.hit(name, self.line(node))

    # functions and classes -------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scopes.append("class")
        if _RETRY_NAME.search(node.name.value):
            self.hit("retry_backoff", node)
        for base in node.bases:
            qn = _qnames(self, base.value)
            if any(q.startswith("pydantic") and q.endswith("BaseModel") for q in qn):
                self.hit("pydantic_models", node)
        for dec in node.decorators:
            target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
            if _qnames(self, target) & {"dataclasses.dataclass", "pydantic.dataclasses.dataclass"}:
                self.hit("dataclasses", node)
        self._docstring(node, nested="def" in self.scopes[:-1])

    def _docstring(self, node: cst.FunctionDef | cst.ClassDef, nested: bool) -> None:
        """Docstring coverage counts public (no leading ``_``), non-nested functions and
        classes of library code."""
        if self.is_test or nested or node.name.value.startswith("_"):
            return
        documented = node.get_docstring() is not None
        self.r.ratio("docstrings", int(documented), 1, qualifies=documented)
        if documented:
            self.mark("docstrings", node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        name = node.name.value
        is_async = node.asynchronous is not None
        in_class = bool(self.scopes) and self.scopes[-1] == "class"
        exempt = name in ("main", "cli") or (bool(self.funcs) and self.funcs[-1].exempt_print)
        nested = "def" in self.scopes
        self.funcs.append(_Frame(name, is_async, in_class, exempt))
        self.scopes.append("def")
        self.saved_loops.append(self.loops)
        self.loops = []
        if _RETRY_NAME.search(name):
            self.hit("retry_backoff", node)
        for dec in node.decorators:
            target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
            if any(q.startswith(_RETRY_DECORATORS) for q in _qnames(self, target)):
                self.hit("retry_backoff", node)
        if not self.is_test:
            self._annotation_coverage(node, in_class)
        self._docstring(node, nested)
        if self.is_test and name.startswith("test"):
            self.test_fn_asserts.append([0, self.line(node) or 0])
        self.bodies.append({"json": set(), "checked": set(), "reads": []})

    def _annotation_coverage(self, node: cst.FunctionDef, in_class: bool) -> None:
        p = node.params
        params = [*p.posonly_params, *p.params, *p.kwonly_params]
        if isinstance(p.star_arg, cst.Param):
            params.append(p.star_arg)
        if p.star_kwarg is not None:
            params.append(p.star_kwarg)
        if in_class and params and params[0].name.value in ("self", "cls", "mcs"):
            params = params[1:]
        slots = len(params) + 1
        annotated = sum(1 for x in params if x.annotation is not None) + (node.returns is not None)
        self.r.ratio("typed_functions", annotated, slots, qualifies=annotated == slots)
        if annotated == slots:
            self.mark("typed_functions", node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        body = self.bodies.pop()
        for name, node in body["reads"]:
            if name in body["json"] and name not in body["checked"]:
                self.hit("unchecked_input", node)
        self.funcs.pop()
        self.scopes.pop()
        self.loops = self.saved_loops.pop()
        if self.is_test and original_node.name.value.startswith("test") and self.test_fn_asserts:
            asserts, line = self.test_fn_asserts.pop()
            self.r.ratio("dense_asserts", asserts, 1, qualifies=asserts >= DENSE_ASSERTS_THRESHOLD)
            if asserts >= DENSE_ASSERTS_THRESHOLD:
                if self.positions is not None:
                    self.r.hits.setdefault("dense_asserts", []).append(line)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.funcs.append(_Frame("<lambda>", False, False, bool(self.funcs) and self.funcs[-1].exempt_print))

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self.funcs.pop()

    # loops (retry detection) ----------------------------------------------------------------
    def _enter_loop(self) -> None:
        self.loops.append({"sleep": False, "try": False})

    def _leave_loop(self, node: cst.CSTNode) -> None:
        frame = self.loops.pop()
        if frame["sleep"] and frame["try"]:
            self.hit("retry_backoff", node)

    def visit_For(self, node: cst.For) -> None:
        self._enter_loop()

    def leave_For(self, original_node: cst.For) -> None:
        self._leave_loop(original_node)

    def visit_While(self, node: cst.While) -> None:
        self._enter_loop()

    def leave_While(self, original_node: cst.While) -> None:
        self._leave_loop(original_node)

    def visit_Try(self, node: cst.Try) -> None:
        for frame in self.loops:
            frame["try"] = True
        guarded = any(h.type is None or {_dotted(n).rsplit(".", 1)[-1] for n in (
            [h.type] if not isinstance(h.type, cst.Tuple) else [e.value for e in h.type.elements])} & _KEY_GUARDS
            for h in node.handlers)
        self.try_guards.append(guarded)

    def leave_Try(self, original_node: cst.Try) -> None:
        self.try_guards.pop()

    def visit_Try_body(self, node: cst.Try) -> None:
        if self.try_guards and self.try_guards[-1]:
            self.guards += 1

    def leave_Try_body(self, node: cst.Try) -> None:
        if self.try_guards and self.try_guards[-1]:
            self.guards -= 1

    def visit_TryStar(self, node: cst.TryStar) -> None:
        for frame in self.loops:
            frame["try"] = True

    # exceptions --------------------------------------------------------------------------------
    def _handler(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        kind = _handler_kind(node)
        self.handlers[kind] += 1
        if kind == "bare":
            self.hit("bare_except", node)
        elif kind == "broad":
            self.hit("broad_except", node)
        else:
            self.mark("specific_excepts", node)
        if kind != "specific" and _only_pass(node.body):
            self.hit("swallowed_exception", node)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self._handler(node)

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        self._handler(node)

    # main guard ----------------------------------------------------------------------------------
    def _environ_membership(self, test: cst.BaseExpression) -> bool:
        """``X in os.environ`` anywhere in an if's test."""
        found = False

        class _Find(cst.CSTVisitor):
            def visit_Comparison(inner, node: cst.Comparison) -> None:  # noqa: N805
                nonlocal found
                for c in node.comparisons:
                    if isinstance(c.operator, cst.In) and _qnames(self, c.comparator) & _ENVIRON:
                        found = True

        test.visit(_Find())
        return found

    def visit_If(self, node: cst.If) -> None:
        t = node.test
        if (isinstance(t, cst.Comparison) and isinstance(t.left, cst.Name) and t.left.value == "__name__"):
            self.main_guard += 1
        if self._environ_membership(t):
            self.guards += 1

    def leave_If(self, original_node: cst.If) -> None:
        t = original_node.test
        if (isinstance(t, cst.Comparison) and isinstance(t.left, cst.Name) and t.left.value == "__name__"):
            self.main_guard -= 1
        if self._environ_membership(t):
            self.guards -= 1

    # subscripts (unchecked reads) -------------------------------------------------------------
    def _targets(self, *targets: cst.BaseExpression) -> None:
        for t in targets:
            if isinstance(t, cst.Subscript):
                self.stores.add(id(t))
            elif isinstance(t, (cst.Tuple, cst.List)):
                self._targets(*(e.value for e in t.elements))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._targets(node.target)

    def visit_Del(self, node: cst.Del) -> None:
        self._targets(node.target)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if id(node) in self.stores or self.guards:
            return
        value = node.value
        if _qnames(self, value) & _ENVIRON:
            self.hit("unchecked_env_read", node)
            return
        dotted = _dotted(value)
        head, _, attr = dotted.rpartition(".")
        if attr in _REQUEST_MAPS and head and _REQUEST_NAME.search(head.split(".")[0]):
            self.hit("unchecked_input", node)
        elif isinstance(value, cst.Name) and self.bodies:
            self.bodies[-1]["reads"].append((value.value, node))

    def _json_body(self, node: cst.BaseExpression) -> bool:
        """``await <something>.json()``"""
        return (isinstance(node, cst.Await) and isinstance(node.expression, cst.Call)
                and isinstance(node.expression.func, cst.Attribute) and node.expression.func.attr.value == "json")

    # with statements (resource management) -----------------------------------------------------
    def visit_WithItem(self, node: cst.WithItem) -> None:
        self.managed.add(id(node.item))

    # calls ---------------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        qn = _qnames(self, node.func)
        dotted = _dotted(node.func)
        if "builtins.isinstance" in qn and node.args and isinstance(node.args[0].value, cst.Name) and self.bodies:
            self.bodies[-1]["checked"].add(node.args[0].value.value)
        last = dotted.rsplit(".", 1)[-1] if dotted else ""
        if last in _MANAGERS:
            for a in node.args:
                self.managed.add(id(a.value))
        if qn & _CLOCK_MONO:
            self.hit("monotonic_clock", node)
        if qn & _SLEEPS:
            for frame in self.loops:
                frame["sleep"] = True
        if qn & {"os.getenv", "os.getenvb"}:
            self.hit("env_config", node)
        if "builtins.print" in qn and not (self.is_main_module or self.main_guard
                                           or (self.funcs and self.funcs[-1].exempt_print)):
            self.hit("print_in_library", node)
        self._log_call(node, dotted)
        self._blocking(node, qn)
        self._resource(node, qn, dotted)
        self._ports(node, last)

    def _log_call(self, node: cst.Call, dotted: str) -> None:
        if not isinstance(node.func, cst.Attribute) or node.func.attr.value not in _LOG_METHODS:
            return
        receiver = _dotted(node.func.value).rsplit(".", 1)[-1].lower()
        if "log" not in receiver:
            return
        args = [a for a in node.args if a.keyword is None and a.star == ""]
        if node.func.attr.value == "log":
            args = args[1:]  # logger.log(level, msg, ...)
        if not args:
            return
        msg = args[0].value
        bad = isinstance(msg, cst.FormattedString)
        if isinstance(msg, cst.Call) and isinstance(msg.func, cst.Attribute) \
                and msg.func.attr.value == "format" and _is_stringy(msg.func.value):
            bad = True
        if isinstance(msg, cst.BinaryOperation) and isinstance(msg.operator, (cst.Modulo, cst.Add)) \
                and _is_stringy(msg.left):
            bad = True
        if bad:
            self.hit("log_fstring", node)

    def _blocking(self, node: cst.Call, qn: set[str]) -> None:
        if not self.funcs or not self.funcs[-1].is_async:
            return
        if qn & _BLOCKING_EXACT or any(q.startswith(_BLOCKING_PREFIX) for q in qn):
            self.hit("blocking_in_async", node)

    def _resource(self, node: cst.Call, qn: set[str], dotted: str) -> None:
        opens = bool(qn & _OPENERS) or any(q.endswith(_SESSION_SUFFIXES) for q in qn) \
            or dotted in _SESSION_BARE
        if opens and id(node) not in self.managed:
            self.hit("unclosed_resource", node)

    def _ports(self, node: cst.Call, last: str) -> None:
        for a in node.args:
            if a.keyword is not None and _PORT_KW.match(a.keyword.value) and isinstance(a.value, cst.Integer):
                self.hit("hardcoded_port", a)
        if last in ("bind", "connect", "create_connection", "open_connection") and node.args:
            first = node.args[0].value
            if isinstance(first, cst.Tuple) and len(first.elements) == 2 \
                    and isinstance(first.elements[1].value, cst.Integer):
                self.hit("hardcoded_port", node)
        if last in ("TCPSite", "open_connection", "start_server", "create_server", "run_app"):
            ints = [a for a in node.args if a.keyword is None and isinstance(a.value, cst.Integer)]
            for a in ints:
                self.hit("hardcoded_port", a)

    # assignments (wall clock used for timing) ---------------------------------------------
    def _is_wall_call(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Call) and bool(_qnames(self, node.func) & _CLOCK_WALL)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, (cst.Add, cst.Subtract)):
            for side in (node.left, node.right):
                if self._is_wall_call(side):
                    self.hit("wall_clock_duration", side)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        for side in (node.left, *(c.comparator for c in node.comparisons)):
            if self._is_wall_call(side):
                self.hit("wall_clock_duration", side)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._targets(*(t.target for t in node.targets))
        if self.bodies and self._json_body(node.value):
            for t in node.targets:
                if isinstance(t.target, cst.Name):
                    self.bodies[-1]["json"].add(t.target.value)
        if not self._is_wall_call(node.value):
            return
        for t in node.targets:
            name = _dotted(t.target).rsplit(".", 1)[-1]
            if name and _TIMING_NAME.search(name):
                self.hit("wall_clock_duration", node)
                return

    def visit_Attribute(self, node: cst.Attribute) -> None:
        # any use of os.environ: .get(), [...], or handing the mapping on (env = os.environ)
        if _qnames(self, node) & {"os.environ", "os.environb"}:
            self.hit("env_config", node)

    def visit_Name(self, node: cst.Name) -> None:
        # ``from os import environ`` then ``environ[...]``
        if not self.in_import and node.value in ("environ", "environb") and self.aliases.get(node.value, "").startswith("os."):
            self.hit("env_config", node)

    # literals -------------------------------------------------------------------------------------
    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._literal(node)

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self._literal(node)

    def _literal(self, node: cst.SimpleString | cst.FormattedString) -> None:
        value = _string_value(node)
        if value is None:
            return
        if _ABS_PATH.match(value):
            self.hit("hardcoded_abs_path", node)
        if _LOCAL_URL.search(value):
            self.hit("hardcoded_port", node)

    # asserts ----------------------------------------------------------------------------------------
    def visit_Assert(self, node: cst.Assert) -> None:
        if self.test_fn_asserts:
            self.test_fn_asserts[-1][0] += 1
        t = node.test
        trivial = _truthy_constant(t)
        weak = isinstance(t, cst.Name) and t.value not in ("True", "False", "None")
        if isinstance(t, cst.Comparison) and len(t.comparisons) == 1:
            right = t.comparisons[0].comparator
            op = t.comparisons[0].operator
            if t.left.deep_equals(right) or (_is_literal(t.left) and _is_literal(right)):
                trivial = True
            elif isinstance(op, cst.IsNot) and isinstance(right, cst.Name) and right.value == "None":
                weak = True
        if trivial:
            self.hit("trivial_asserts", node)
        elif weak:
            self.hit("weak_asserts", node)

    def visit_With(self, node: cst.With) -> None:
        # pytest.raises counts as an assertion of its test function
        if not self.test_fn_asserts:
            return
        for item in node.items:
            call = item.item
            if isinstance(call, cst.Call) and _qnames(self, call.func) & {"pytest.raises", "pytest.warns"}:
                self.test_fn_asserts[-1][0] += 1


def _finish(r: FileFeatures, ex: _Extractor) -> None:
    if ex.handlers["specific"] and not ex.handlers["bare"] and not ex.handlers["broad"]:
        r.counts["specific_excepts"] = ex.handlers["specific"]
    r.counts["_handlers"] = sum(ex.handlers.values())


def _rebound_builtins(module: cst.Module) -> set[str]:
    """Builtin names the module rebinds at top level (``def open(...)``, ``print = ...``)."""
    out: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            out.add(stmt.name.value)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign):
                    out.update(t.target.value for t in small.targets if isinstance(t.target, cst.Name))
                elif isinstance(small, (cst.AnnAssign, cst.AugAssign)) and isinstance(small.target, cst.Name):
                    out.add(small.target.value)
    return out & _BUILTINS


def extract_file(path: str, source: bytes | str, *, lines: bool = True) -> FileFeatures:
    """Features of one file. With ``lines`` the hit lines are recorded too (that needs
    libcst's ``PositionProvider``, about half the cost, so campaign-wide extraction skips
    it and asks again only for the files it quotes). Raises ``libcst.ParserSyntaxError``
    (or another exception) when the file cannot be parsed; callers turn that into an
    :class:`UnparsedFile`."""
    module = cst.parse_module(source)
    positions = None
    if lines:
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        positions = wrapper.resolve(PositionProvider)
        module = wrapper.module
    result = FileFeatures(path=path, is_test=is_test_path(path))
    ex = _Extractor(result, path.rsplit("/", 1)[-1] == "__main__.py", positions, _rebound_builtins(module))
    module.visit(ex)
    _finish(result, ex)
    return result


def describe_error(exc: BaseException) -> tuple[int | None, str]:
    """(line, message) for a parse failure."""
    if isinstance(exc, cst.ParserSyntaxError):
        first = str(exc.message).splitlines()[0] if exc.message else "syntax error"
        # the native parser's message names the token position ("error at L:C"), which is
        # more precise than ``raw_line`` (often the line after the error)
        m = re.search(r"error at (\d+):(\d+)", first)
        line = int(m.group(1)) if m else exc.raw_line
        return line, f"syntax error: {first}"
    if isinstance(exc, RecursionError):
        return None, "too deeply nested to parse (RecursionError)"
    if isinstance(exc, (UnicodeDecodeError, LookupError)):
        return None, f"cannot decode: {exc}"
    return None, f"{type(exc).__name__}: {exc}"


Extracted = FileFeatures | tuple[int | None, str]


def extract_safe(path: str, data: bytes, lines: bool = False) -> Extracted:
    """:func:`extract_file`, with every failure turned into ``(line, message)``."""
    if len(data) > MAX_FILE_BYTES:
        return (None, f"file too large to analyse ({len(data)} bytes)")
    try:
        return extract_file(path, data, lines=lines)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, never dropped
        return describe_error(exc)


# --- aggregation --------------------------------------------------------------------------------

def _key(path: str, data: bytes) -> tuple[bool, bool, str]:
    return (is_test_path(path), path.rsplit("/", 1)[-1] == "__main__.py", hashlib.sha256(data).hexdigest())


class FeatureCache:
    """Memoises extraction (without lines) by (file kind, content hash): generations of
    one campaign often share files byte for byte. (A process pool was tried and measured
    slower than one process on a 120-generation Prime campaign: spawning workers and
    pickling results cost more than the parsing they saved.)"""

    def __init__(self) -> None:
        self._done: dict[tuple[bool, bool, str], Extracted] = {}

    def get(self, path: str, data: bytes) -> Extracted:
        k = _key(path, data)
        if k not in self._done:
            self._done[k] = extract_safe(path, data)
        got = self._done[k]
        if isinstance(got, tuple):
            return got
        return FileFeatures(path, got.is_test, dict(got.counts), {}, {n: list(v) for n, v in got.ratios.items()},
                            dict(got.qualifying))


RATIO_FEATURES = {
    "typed_functions": TYPED_THRESHOLD,
    "docstrings": DOCSTRING_THRESHOLD,
    "dense_asserts": DENSE_ASSERTS_THRESHOLD,
}


def generation_features(number: int, files: Mapping[str, bytes], cache: FeatureCache | None = None,
                        *, lines: bool = False) -> GenerationFeatures:
    """Aggregate the features of every ``.py`` file of one generation. ``hits`` holds
    (file, line) pairs only with ``lines=True``."""
    cache = cache or FeatureCache()
    counts = {name: 0 for name in FEATURE_NAMES}
    per_file: dict[str, dict[str, int]] = {}
    hits: dict[str, list[tuple[str, int]]] = {name: [] for name in FEATURE_NAMES}
    ratio_sum: dict[str, list[int]] = {}
    qualifying: dict[str, int] = {}
    unparsed: list[UnparsedFile] = []
    handlers = 0
    specific_files_ok = True
    n_py = 0
    for path in sorted(files):
        if not path.endswith(".py"):
            continue
        n_py += 1
        got = extract_safe(path, files[path], lines=True) if lines else cache.get(path, files[path])
        if isinstance(got, tuple):
            unparsed.append(UnparsedFile(number, path, got[0], got[1]))
            continue
        per_file[path] = {k: v for k, v in (*got.counts.items(), *got.qualifying.items())
                          if not k.startswith("_") and v}
        handlers += got.counts.get("_handlers", 0)
        if got.counts.get("_handlers", 0) and not got.counts.get("specific_excepts"):
            specific_files_ok = False
        for name in FEATURE_NAMES:
            counts[name] += got.counts.get(name, 0)
            hits[name].extend((path, line) for line in got.hits.get(name, []))
        for name, (num, den) in got.ratios.items():
            acc = ratio_sum.setdefault(name, [0, 0])
            acc[0] += num
            acc[1] += den
        for name, n in got.qualifying.items():
            qualifying[name] = qualifying.get(name, 0) + n
    ratios: dict[str, float | None] = {}
    for name in RATIO_FEATURES:
        num, den = ratio_sum.get(name, [0, 0])
        ratios[name] = (num / den) if den else None
    values: dict[str, bool] = {}
    for f in FEATURES:
        if f.name == "specific_excepts":
            values[f.name] = handlers > 0 and specific_files_ok
        elif f.name in RATIO_FEATURES:
            r = ratios[f.name]
            values[f.name] = r is not None and r >= RATIO_FEATURES[f.name]
        else:
            values[f.name] = counts[f.name] > 0
    # ratio features count their qualifying units (fully typed functions, documented
    # functions and classes, tests with at least two assertions)
    for name in RATIO_FEATURES:
        counts[name] = qualifying.get(name, 0)
    if not values["specific_excepts"]:
        counts["specific_excepts"] = 0
    return GenerationFeatures(number=number, values=values, counts=counts, files=per_file,
                              hits=hits, ratios=ratios, python_files=n_py, unparsed=unparsed)


def first_hit(path: str, data: bytes, feature: str) -> int | None:
    """Line of the first occurrence of ``feature`` in one file (re-analysed with lines)."""
    got = extract_safe(path, data, lines=True)
    if isinstance(got, tuple):
        return None
    found = got.hits.get(feature)
    return found[0] if found else None


def snippet(source: bytes | str, line: int, before: int = 1, after: int = 2) -> str:
    """A few lines around ``line`` (1-based), each prefixed with its number."""
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    lines = text.splitlines()
    lo, hi = max(1, line - before), min(len(lines), line + after)
    return "\n".join(f"{n:>4} | {lines[n - 1]}" for n in range(lo, hi + 1))
