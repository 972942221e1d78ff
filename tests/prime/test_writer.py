"""The safe writer: one test per class of unsafe path or limit, each with its own message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.prime.parser import ParsedFile
from core.prime.writer import UnsafePathError, WriteError, WriteLimits, check_files, write_artifact


def reject(files, tmp_path: Path, kind: str, limits: WriteLimits | None = None) -> WriteError:
    out = tmp_path / "out"
    with pytest.raises(WriteError) as ei:
        write_artifact(files, out, limits)
    assert ei.value.kind == kind, ei.value
    assert not out.exists()  # validated before anything was written, even the directory
    return ei.value


def test_writes_files_and_directories(tmp_path):
    files = [ParsedFile("a.py", "x = 1\n"), ParsedFile("pkg/sub/b.txt", "é\n")]
    written = write_artifact(files, tmp_path / "out")
    assert written == {"a.py": b"x = 1\n", "pkg/sub/b.txt": "é\n".encode()}
    assert (tmp_path / "out/pkg/sub/b.txt").read_bytes() == "é\n".encode()
    assert oct((tmp_path / "out/a.py").stat().st_mode & 0o777) == "0o644"


def test_accepts_mappings_and_bytes(tmp_path):
    write_artifact({"bin.dat": b"\x00\x01", "t.txt": "t"}, tmp_path / "o")
    assert (tmp_path / "o/bin.dat").read_bytes() == b"\x00\x01"


def test_absolute_path(tmp_path):
    e = reject({"/etc/passwd": "x"}, tmp_path, "absolute")
    assert "absolute path '/etc/passwd'" in str(e) and e.path == "/etc/passwd"


def test_dotdot(tmp_path):
    e = reject({"a/../../escape.py": "x"}, tmp_path, "dotdot")
    assert "'..' segment" in str(e)


def test_nul(tmp_path):
    assert "NUL byte" in str(reject({"a\x00.py": "x"}, tmp_path, "nul"))


def test_backslash(tmp_path):
    assert "backslash" in str(reject({"a\\b.py": "x"}, tmp_path, "backslash"))


def test_windows_drive_letter(tmp_path):
    assert "Windows drive" in str(reject({"C:/Windows/x.py": "x"}, tmp_path, "drive"))
    assert reject({"d:x.py": "x"}, tmp_path, "drive")


def test_control_characters(tmp_path):
    assert "control character" in str(reject({"a\tb.py": "x"}, tmp_path, "control"))


def test_empty_path(tmp_path):
    assert str(reject({"": "x"}, tmp_path, "empty")) == "empty path"


def test_empty_or_dot_segment(tmp_path):
    for p in ("a//b.py", "./a.py", "a/./b.py", "dir/"):
        assert "empty or '.' segment" in str(reject({p: "x"}, tmp_path, "dot-segment"))


def test_too_long(tmp_path):
    assert "too long" in str(reject({"a" * 300 + ".py": "x"}, tmp_path, "too-long"))
    assert reject({"/".join(["d"] * 600): "x"}, tmp_path, "too-long")


def test_manifest_from_the_llm(tmp_path):
    e = reject({"manifest.json": "{}"}, tmp_path, "reserved-manifest")
    assert "written by Cambrian's code" in str(e)
    reject({"MANIFEST.json": "{}"}, tmp_path, "reserved-manifest")


def test_spec_dir_is_reserved(tmp_path):
    assert "spec copy" in str(reject({"spec/prime.md": "x"}, tmp_path, "reserved-spec"))
    write_artifact({"spec/prime.md": "x"}, tmp_path / "ok", allow={"spec/prime.md"})  # code may


def test_duplicates(tmp_path):
    e = reject([ParsedFile("a.py", "1"), ParsedFile("a.py", "2")], tmp_path, "duplicate")
    assert "duplicate path 'a.py'" in str(e)


def test_case_fold_duplicates(tmp_path):
    e = reject({"README.md": "1", "readme.MD": "2"}, tmp_path, "casefold-duplicate")
    assert "differ only in case" in str(e)
    # Unicode normalisation too: é precomposed vs e + combining accent
    reject({"caf\u00e9.py": "1", "cafe\u0301.py": "2"}, tmp_path, "casefold-duplicate")
    # German ß casefolds to ss
    reject({"stra\u00dfe.txt": "1", "STRASSE.txt": "2"}, tmp_path, "casefold-duplicate")


def test_file_and_directory_conflict(tmp_path):
    e = reject({"a": "x", "a/b.py": "y"}, tmp_path, "file-dir-conflict")
    assert "'a' is a file but 'a/b.py' needs it to be a directory" in str(e)


def test_oversize_file(tmp_path):
    e = reject({"big.bin": b"x" * 11}, tmp_path, "file-too-large", WriteLimits(max_file_bytes=10))
    assert "11 bytes" in str(e) and "limit of 10" in str(e)


def test_too_many_files(tmp_path):
    e = reject({f"f{i}": "" for i in range(4)}, tmp_path, "too-many-files", WriteLimits(max_files=3))
    assert "4 files" in str(e)


def test_total_size(tmp_path):
    e = reject({"a": b"x" * 6, "b": b"y" * 6}, tmp_path, "total-too-large", WriteLimits(max_total_bytes=10))
    assert "total 12 bytes" in str(e)


def test_path_through_an_existing_symlinked_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"ok.py": "1", "link/evil.py": "x"}, out)
    assert ei.value.kind == "symlink" and "symbolic link 'link'" in str(ei.value)
    assert list(outside.iterdir()) == [] and not (out / "ok.py").exists()  # validated before writing


def test_target_is_an_existing_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.py").symlink_to(victim)
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"a.py": "x"}, out)
    assert ei.value.kind == "symlink" and victim.read_text() == "keep"


def test_dangling_symlink_target(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "new.py").symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"new.py": "x"}, out)
    assert ei.value.kind == "symlink" and not (tmp_path / "does-not-exist").exists()


def test_output_directory_itself_is_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real, target_is_directory=True)
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"a.py": "x"}, tmp_path / "out")
    assert ei.value.kind == "symlink" and "output directory" in str(ei.value)


def test_existing_hard_link_is_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    os.link(victim, out / "a.py")
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"a.py": "x"}, out)
    assert ei.value.kind == "exists" and "hard link" in str(ei.value) and victim.read_text() == "keep"


def test_existing_file_is_never_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.py").write_text("old")
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"a.py": "new"}, out)
    assert ei.value.kind == "exists" and (out / "a.py").read_text() == "old"


def test_component_exists_as_a_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "pkg").write_text("")
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"pkg/a.py": "x"}, out)
    assert ei.value.kind == "not-a-directory"


def test_symlink_planted_after_the_check_is_still_refused(tmp_path, monkeypatch):
    """O_NOFOLLOW on every directory open: a race that swaps in a link loses."""
    import core.prime.writer as w

    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    real_check = w._check_disk

    def check_then_plant(root, path):
        real_check(root, path)
        if path == "d/x.py" and not (out / "d").exists():
            out.mkdir(exist_ok=True)
            (out / "d").symlink_to(outside, target_is_directory=True)

    monkeypatch.setattr(w, "_check_disk", check_then_plant)
    with pytest.raises(UnsafePathError) as ei:
        write_artifact({"d/x.py": "x"}, out)
    assert ei.value.kind == "symlink" and list(outside.iterdir()) == []


def test_every_class_has_its_own_message(tmp_path):
    cases = {
        "absolute": {"/a": ""}, "dotdot": {"../a": ""}, "nul": {"a\x00": ""}, "backslash": {"a\\b": ""},
        "drive": {"C:a": ""}, "control": {"a\nb": ""}, "empty": {"": ""}, "dot-segment": {"a//b": ""},
        "reserved-manifest": {"manifest.json": ""}, "reserved-spec": {"spec/x.md": ""},
        "duplicate": [("a", ""), ("a", "")], "casefold-duplicate": {"A": "", "a": ""},
        "file-dir-conflict": {"a": "", "a/b": ""},
    }
    messages = {}
    for kind, files in cases.items():
        with pytest.raises(WriteError) as ei:
            check_files(files)
        assert ei.value.kind == kind
        messages[kind] = str(ei.value).replace(repr(ei.value.path or ""), "P")
    assert len(set(messages.values())) == len(messages)
