"""Render a canonical source in one answer's style.

Templates write their modules once, in the "careful" style: fully annotated, with
docstrings, specific exception handlers, ``time.monotonic()`` and structlog-style log
calls (``log.info("event", key=value)``). ``stylize`` rewrites that source (with libcst,
so the result always parses) into the style the answer drew:

* ``typed=False``: parameter and return annotations are dropped (class fields keep
  theirs: dataclasses and pydantic models need them);
* ``docstrings=False``: function and class docstrings are dropped;
* ``excepts="broad"``: ``except X as e`` becomes ``except Exception as e``;
  ``excepts="bare"``: handlers that never use the exception become ``except:``
  (the others become broad, so behaviour is unchanged);
* ``clock="time"``: ``time.monotonic()`` becomes ``time.time()``;
* ``logger="logging"``: log calls become %-style (or f-strings when ``log_fstrings``).

Placeholders ``__LOG_IMPORT__`` and ``__LOG_DEF__`` (each alone on a line) become the
logger import and definition.
"""

from __future__ import annotations

import functools

import libcst as cst

from core.llm.sim.style import Style

LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


class _StripAnnotations(cst.CSTTransformer):
    def leave_Param(self, original: cst.Param, updated: cst.Param) -> cst.Param:
        if updated.annotation is None:
            return updated
        equal = updated.equal
        if updated.default is not None:
            equal = cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
            )
        return updated.with_changes(annotation=None, equal=equal)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        return updated.with_changes(returns=None)


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    expr = stmt.body[0]
    return isinstance(expr, cst.Expr) and isinstance(expr.value, (cst.SimpleString, cst.ConcatenatedString))


class _StripDocstrings(cst.CSTTransformer):
    def _strip(self, updated):
        body = updated.body
        if not isinstance(body, cst.IndentedBlock) or not body.body:
            return updated
        stmts = list(body.body)
        if _is_docstring(stmts[0]):
            stmts = stmts[1:] or [cst.SimpleStatementLine([cst.Pass()])]
            # drop a blank line that followed the docstring
            first = stmts[0]
            if hasattr(first, "leading_lines") and first.leading_lines:
                stmts[0] = first.with_changes(leading_lines=())
        return updated.with_changes(body=body.with_changes(body=stmts))

    def leave_FunctionDef(self, original, updated):
        return self._strip(updated)

    def leave_ClassDef(self, original, updated):
        return self._strip(updated)


class _NameUse(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.used = False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name:
            self.used = True


class _Excepts(cst.CSTTransformer):
    """Widen exception handlers. Only the *last* handler of a ``try`` is widened, so a
    broad handler never shadows a later, more specific one (behaviour stays the same for
    the exceptions the code expects)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def _widen(self, handler: cst.ExceptHandler) -> cst.ExceptHandler:
        if handler.type is None:
            return handler
        code = cst.Module([]).code_for_node(handler.type)
        # never widen handlers of control-flow exceptions (HTTP errors, cancellation)
        if "HTTP" in code or "Cancelled" in code or "StopIteration" in code or "KeyboardInterrupt" in code:
            return handler
        name = handler.name.name.value if handler.name and isinstance(handler.name.name, cst.Name) else None
        used = False
        if name:
            finder = _NameUse(name)
            handler.body.visit(finder)
            used = finder.used
        if self.mode == "bare" and not used:
            return handler.with_changes(type=None, name=None, whitespace_after_except=cst.SimpleWhitespace(""))
        return handler.with_changes(type=cst.Name("Exception"))

    def leave_Try(self, original: cst.Try, updated: cst.Try) -> cst.Try:
        if not updated.handlers:
            return updated
        handlers = list(updated.handlers)
        handlers[-1] = self._widen(handlers[-1])
        return updated.with_changes(handlers=handlers)


class _LogCalls(cst.CSTTransformer):
    def __init__(self, fstrings: bool) -> None:
        self.fstrings = fstrings

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        func = updated.func
        if not (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "log"
            and func.attr.value in LEVELS
            and updated.args
            and isinstance(updated.args[0].value, cst.SimpleString)
        ):
            return updated
        event = updated.args[0].value.evaluated_value
        kwargs = [a for a in updated.args[1:] if a.keyword is not None]
        if not kwargs:
            return updated
        mod = cst.Module([])
        if self.fstrings:
            parts = " ".join(f"{a.keyword.value}={{{mod.code_for_node(a.value)}}}" for a in kwargs)
            text = f"{event} {parts}".replace('"', "'")
            new_args = [cst.Arg(cst.parse_expression('f"' + text + '"'))]
        else:
            fmt = event + " " + " ".join(f"{a.keyword.value}=%s" for a in kwargs)
            new_args = [cst.Arg(cst.SimpleString('"' + fmt.replace('"', "'") + '"'))]
            new_args += [cst.Arg(a.value) for a in kwargs]
        # keep the comma layout readable
        fixed = []
        for i, a in enumerate(new_args):
            if i < len(new_args) - 1:
                a = a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            fixed.append(a)
        return updated.with_changes(args=fixed)


def logger_lines(style: Style) -> tuple[str, str]:
    if style.logger == "structlog":
        return "import structlog", "log = structlog.get_logger(__name__)"
    return "import logging", "log = logging.getLogger(__name__)"


@functools.lru_cache(maxsize=1024)
def stylize(source: str, style: Style) -> str:
    imp, define = logger_lines(style)
    lines = []
    for line in source.split("\n"):
        if line.strip() == "__LOG_IMPORT__":
            lines.append(imp)
        elif line.strip() == "__LOG_DEF__":
            lines.append(define)
        else:
            lines.append(line)
    source = "\n".join(lines)
    if style.clock == "time":
        source = source.replace("time.monotonic()", "time.time()")
    module = cst.parse_module(source)
    if not style.typed:
        module = module.visit(_StripAnnotations())
    if not style.docstrings:
        module = module.visit(_StripDocstrings())
    if style.excepts != "specific":
        module = module.visit(_Excepts(style.excepts))
    if style.logger == "logging":
        module = module.visit(_LogCalls(style.log_fstrings))
    return module.code
