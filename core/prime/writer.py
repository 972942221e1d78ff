"""The safe artifact writer (DESIGN §5 step 4, §6.4).

``write_artifact(files, out_dir, limits)`` validates *every* file before writing *any*, then
writes them without ever following a link. Each class of problem raises
:class:`UnsafePathError` (or :class:`WriteError` for limits) with its own ``kind`` and message:

lexical (also used by the parser, so the model can be asked to repair them):
``empty``, ``absolute`` (leading ``/``), ``drive`` (``C:``-style Windows drive),
``backslash``, ``nul``, ``control`` (other control characters), ``dotdot`` (a ``..``
segment), ``dot-segment`` (an empty or ``.`` segment: ``a//b``, ``./a``, ``a/``),
``too-long`` (path > ``max_path_bytes`` or a segment > ``max_segment_bytes``),
``reserved-manifest`` (``manifest.json``: code writes it), ``reserved-spec`` (anything under
``spec/``: code writes the spec copy);

across files: ``duplicate``, ``casefold-duplicate`` (paths equal after Unicode NFC +
``casefold()``: they collide on case-insensitive file systems), ``file-dir-conflict``
(``a`` and ``a/b``), ``too-many-files``, ``file-too-large``, ``total-too-large``;

on disk: ``symlink`` (the output directory, a directory on the way or the target is a
symbolic link), ``not-a-directory`` (a path component exists as a file), ``exists`` (the
target exists — artifacts are immutable; an existing hard link is reported as such).

Writing uses directory file descriptors: every directory is opened with
``O_DIRECTORY | O_NOFOLLOW`` relative to its parent, every file is created with
``O_CREAT | O_EXCL | O_NOFOLLOW``, so a link planted between the check and the write is
still refused. Reserved paths can be allowed explicitly (``allow={"spec/echo.md"}``) — that
is how code adds the spec copy.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class WriteLimits:
    max_files: int = 1000
    max_file_bytes: int = 2_000_000
    max_total_bytes: int = 20_000_000
    max_path_bytes: int = 1024
    max_segment_bytes: int = 255


class WriteError(ValueError):
    def __init__(self, kind: str, message: str, path: str | None = None) -> None:
        self.kind = kind
        self.path = path
        self.message = message
        super().__init__(message)


class UnsafePathError(WriteError):
    pass


def lexical_path_problem(
    path: str, limits: WriteLimits | None = None, *, allow: Collection[str] = ()
) -> tuple[str, str] | None:
    """(kind, message) for a path that can never be written, else None."""
    limits = limits or WriteLimits()
    if path == "":
        return "empty", "empty path"
    if "\x00" in path:
        return "nul", f"NUL byte in path {path!r}"
    if "\\" in path:
        return "backslash", f"backslash in path {path!r}: use '/' as the only separator"
    if path.startswith("/"):
        return "absolute", f"absolute path {path!r}: paths must be relative to the artifact root"
    if len(path) >= 2 and path[1] == ":" and path[0].isascii() and path[0].isalpha():
        return "drive", f"Windows drive path {path!r}: paths must be relative to the artifact root"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "control", f"control character in path {path!r}"
    segments = path.split("/")
    if ".." in segments:
        return "dotdot", f"'..' segment in path {path!r}: paths must stay inside the artifact"
    if any(s in ("", ".") for s in segments):
        return "dot-segment", f"empty or '.' segment in path {path!r} (write it as a plain relative path)"
    if len(path.encode("utf-8")) > limits.max_path_bytes or any(
        len(s.encode("utf-8")) > limits.max_segment_bytes for s in segments
    ):
        return "too-long", (f"path {path[:80]!r}… is too long (max {limits.max_path_bytes} bytes, "
                            f"{limits.max_segment_bytes} per segment)")
    if path not in allow:
        folded = _fold(path)
        if folded == "manifest.json":
            return "reserved-manifest", f"{path!r}: manifest.json is written by Cambrian's code, never by the model"
        if folded.startswith("spec/"):
            return "reserved-spec", f"{path!r}: spec/ holds the spec copy, which Cambrian's code writes"
    return None


def _fold(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


def _items(files: Any) -> list[tuple[str, bytes]]:
    if isinstance(files, Mapping):
        pairs: Iterable[Any] = files.items()
    else:
        pairs = ((f.path, f.content) if hasattr(f, "path") else f for f in files)
    out = []
    for path, content in pairs:
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        out.append((str(path), data))
    return out


def check_files(
    files: Any, limits: WriteLimits | None = None, *, allow: Collection[str] = ()
) -> list[tuple[str, bytes]]:
    """All checks that do not look at the disk; returns (path, bytes) pairs."""
    limits = limits or WriteLimits()
    items = _items(files)
    if len(items) > limits.max_files:
        raise WriteError("too-many-files", f"{len(items)} files: more than the limit of {limits.max_files}")
    seen: dict[str, str] = {}
    folded: dict[str, str] = {}
    total = 0
    for path, data in items:
        problem = lexical_path_problem(path, limits, allow=allow)
        if problem is not None:
            raise UnsafePathError(problem[0], problem[1], path)
        if path in seen:
            raise UnsafePathError("duplicate", f"duplicate path {path!r}", path)
        seen[path] = path
        f = _fold(path)
        if f in folded:
            raise UnsafePathError(
                "casefold-duplicate",
                f"{folded[f]!r} and {path!r} differ only in case or Unicode form: they collide on "
                "case-insensitive file systems",
                path,
            )
        folded[f] = path
        if len(data) > limits.max_file_bytes:
            raise WriteError("file-too-large",
                             f"{path!r} is {len(data)} bytes: more than the limit of {limits.max_file_bytes}", path)
        total += len(data)
    if total > limits.max_total_bytes:
        raise WriteError("total-too-large",
                         f"the files total {total} bytes: more than the limit of {limits.max_total_bytes}")
    files_set = set(seen)
    for path in seen:
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in files_set:
                raise UnsafePathError("file-dir-conflict",
                                      f"{prefix!r} is a file but {path!r} needs it to be a directory", path)
    return items


def _check_disk(root: Path, path: str) -> None:
    parts = path.split("/")
    cur = root
    for i, part in enumerate(parts):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return  # nothing below can exist either
        last = i == len(parts) - 1
        where = "/".join(parts[: i + 1])
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError("symlink", f"{path!r} goes through the symbolic link {where!r} in the output "
                                  "directory; links are never followed", path)
        if not last and not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError("not-a-directory", f"{path!r}: {where!r} exists and is not a directory", path)
        if last:
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePathError("exists", f"{path!r} already exists as a directory", path)
            if st.st_nlink > 1:
                raise UnsafePathError("exists", f"{path!r} already exists and is a hard link "
                                      f"({st.st_nlink} links); artifacts are never overwritten", path)
            raise UnsafePathError("exists", f"{path!r} already exists; artifacts are never overwritten", path)


def _open_dir(name: str, parent_fd: int, path: str) -> int:
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError("symlink", f"{path!r}: {name!r} is a link or not a directory", path) from exc
        raise


def write_artifact(
    files: Any,
    out_dir: str | os.PathLike[str],
    limits: WriteLimits | None = None,
    *,
    allow: Collection[str] = (),
) -> dict[str, bytes]:
    """Validate all files, then write them under ``out_dir``; returns {path: bytes written}."""
    items = check_files(files, limits, allow=allow)
    root = Path(out_dir)
    if os.path.lexists(root):
        if os.path.islink(root):
            raise UnsafePathError("symlink", f"output directory {str(root)!r} is a symbolic link")
        if not root.is_dir():
            raise UnsafePathError("not-a-directory", f"output path {str(root)!r} is not a directory")
    for path, _ in items:
        _check_disk(root, path)
    root.mkdir(parents=True, exist_ok=True)
    root_fd = os.open(root, _DIR_FLAGS)
    written: dict[str, bytes] = {}
    try:
        for path, data in items:
            parts = path.split("/")
            fds: list[int] = []
            try:
                fd = root_fd
                for part in parts[:-1]:
                    fd = _open_dir(part, fd, path)
                    fds.append(fd)
                try:
                    out = os.open(parts[-1], _FILE_FLAGS, 0o644, dir_fd=fd)
                except FileExistsError as exc:
                    raise UnsafePathError("exists", f"{path!r} already exists; artifacts are never overwritten",
                                          path) from exc
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise UnsafePathError("symlink", f"{path!r} is a symbolic link", path) from exc
                    raise
                try:
                    view = memoryview(data)
                    while view:
                        n = os.write(out, view)
                        view = view[n:]
                finally:
                    os.close(out)
                written[path] = data
            finally:
                for f in fds:
                    os.close(f)
    finally:
        os.close(root_fd)
    return written
