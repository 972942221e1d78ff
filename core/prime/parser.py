"""The LLM output format (DESIGN §6.4): a line state machine.

The answer is read line by line; ``\\n`` is the only line separator (``str.split("\\n")``, so
``\\r``, form feeds, U+2028 and friends are ordinary characters). A marker line may end in one
``\\r`` (CRLF answers); content lines are kept byte for byte.

* **Opening line** — exactly ``<file path="P">`` (``P`` has no ``"``). Outside a block, any
  other line that starts with ``<file`` is an error (``malformed-open``: single quotes,
  missing or unterminated quotes, extra attributes, trailing text, …); so is a valid
  opening line indented by spaces or tabs. Every other line outside a block — prose, code fences, stray
  ``</file:end>`` lines — is ignored.
* **Content** — every line after the opening up to the closing line. Each content line
  keeps its line break: the content is ``"".join(line + "\\n" for line in lines)``, so a
  block with no lines is the empty file and every non-empty file ends with ``\\n``.
* **Closing line** — exactly ``</file:end>``.
* **Inside a block, a line that starts with ``<file`` is an error** (``nested-block``):
  it almost always means the previous block was never closed, and the shipped specs tell the
  model that no file may contain such a line. (The same rule as ``spec/prime.md``'s own
  parser.)

Errors (``ParseError(line, message, code)``, ``line`` 1-based, first problem wins):
``malformed-open`` (the line), ``empty-path`` / ``unsafe-path`` / ``reserved-path`` (the
opening line; the lexical checks of ``core.prime.writer.lexical_path_problem``, so the model
can be asked to fix them in a repair call), ``duplicate-path`` (the second opening line, naming
the first), ``nested-block`` (the inner line), ``unterminated-block`` (the opening line),
``no-files`` (line 1).

``serialize_files`` is the inverse: ``parse_files(serialize_files(fs)) == fs`` for every
list of files whose paths pass the checks above and whose contents are *representable*:
empty or ending in ``\\n``, and with no line that is ``</file:end>`` or starts with ``<file``
(optionally followed by ``\\r``). Anything else raises ``ValueError`` (``normalize=True``
appends the missing final newline instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

OPEN_RE = re.compile(r'<file path="([^"]*)">')
CLOSE = "</file:end>"


@dataclass(frozen=True)
class ParsedFile:
    path: str
    content: str
    line: int = 0  # 1-based line of the opening line (0 when built by code)


class ParseError(ValueError):
    def __init__(self, line: int, message: str, code: str = "parse-error") -> None:
        self.line = max(1, int(line))
        self.message = message
        self.code = code
        super().__init__(f"line {self.line}: {message} [{code}]")


def _marker(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def _malformed_reason(line: str) -> str:
    """Why a line starting with ``<file`` is not a valid opening line."""
    rest = line[len("<file"):]
    if not rest.startswith(" "):
        return "expected a space and path=\"…\" after '<file'"
    m = re.match(r" +path\s*=\s*(.?)", rest)
    if not m:
        return "the only attribute must be path=\"…\""
    if rest.startswith("  ") or re.match(r" path\s+=|\s*path=\s", rest):
        return "write exactly <file path=\"…\"> with single spaces and no spaces around '='"
    quote = m.group(1)
    if quote == "'":
        return "the path must be in double quotes, not single quotes"
    if quote != '"':
        return "the path must be in double quotes"
    after = rest[len(' path="'):]
    end = after.find('"')
    if end < 0:
        return "unterminated quote in path=\"…\""
    tail = after[end + 1:]
    if not tail.startswith(">"):
        if tail.strip().startswith(">") or "=" in tail:
            return "unexpected text after the path attribute (only path=\"…\" is allowed)"
        return "the opening line must end with '>' right after the closing quote"
    return "unexpected text after '>' on the opening line"


def parse_files(text: str, *, check_paths: bool = True) -> list[ParsedFile]:
    """Parse an answer into files, or raise :class:`ParseError` (see the module docstring)."""
    if check_paths:
        from core.prime.writer import lexical_path_problem
    files: list[ParsedFile] = []
    seen: dict[str, int] = {}
    open_path: str | None = None
    open_line = 0
    content: list[str] = []
    for n, raw in enumerate(text.split("\n"), 1):
        line = _marker(raw)
        if open_path is None:
            if line.startswith("<file"):
                m = OPEN_RE.fullmatch(line)
                if not m:
                    raise ParseError(n, f"malformed opening line {line[:80]!r}: {_malformed_reason(line)}",
                                     "malformed-open")
                path = m.group(1)
                if path == "":
                    raise ParseError(n, "empty path in <file path=\"\">", "empty-path")
                if check_paths:
                    problem = lexical_path_problem(path)
                    if problem is not None:
                        kind, message = problem
                        code = "reserved-path" if kind.startswith("reserved") else "unsafe-path"
                        raise ParseError(n, message, code)
                if path in seen:
                    raise ParseError(n, f"duplicate path {path!r} (first opened on line {seen[path]})",
                                     "duplicate-path")
                seen[path] = n
                open_path, open_line, content = path, n, []
            elif line[:1] in (" ", "\t") and OPEN_RE.fullmatch(line.lstrip(" \t")):
                raise ParseError(n, "indented opening line: <file path=\"…\"> must start at column 1",
                                 "malformed-open")
            # anything else outside a block (prose, fences, stray closing lines) is ignored
            continue
        if line == CLOSE:
            files.append(ParsedFile(open_path, "".join(c + "\n" for c in content), open_line))
            open_path = None
            continue
        if line.startswith("<file"):
            raise ParseError(
                n,
                f"a line starting with '<file' inside the block for {open_path!r} (opened on line "
                f"{open_line}); close each block with a line that is exactly {CLOSE}",
                "nested-block",
            )
        content.append(raw)
    if open_path is not None:
        raise ParseError(open_line, f"unterminated block for {open_path!r}: no {CLOSE} line follows",
                         "unterminated-block")
    if not files:
        raise ParseError(1, f"no <file path=\"…\"> blocks found in the answer "
                            f"({text.count(chr(10)) + 1} lines read)", "no-files")
    return files


def representable(content: str) -> str | None:
    """Why ``content`` cannot be carried by the format, or None if it can."""
    if content and not content.endswith("\n"):
        return "content must be empty or end with a newline"
    for i, line in enumerate(content.split("\n")[:-1], 1):
        m = _marker(line)
        if m == CLOSE:
            return f"content line {i} is the closing marker {CLOSE}"
        if m.startswith("<file"):
            return f"content line {i} starts with '<file'"
    return None


def serialize_files(files: Iterable[ParsedFile | tuple[str, str]], *, normalize: bool = False) -> str:
    """Emit files in the §6.4 format (the inverse of :func:`parse_files`)."""
    out: list[str] = []
    for f in files:
        path, content = (f.path, f.content) if isinstance(f, ParsedFile) else f
        if not path or '"' in path or "\n" in path or "\r" in path:
            raise ValueError(f"path {path!r} cannot be written in an opening line")
        if normalize and content and not content.endswith("\n"):
            content += "\n"
        why = representable(content)
        if why is not None:
            raise ValueError(f"{path}: {why}")
        out.append(f'<file path="{path}">\n{content}{CLOSE}\n')
    return "".join(out)
