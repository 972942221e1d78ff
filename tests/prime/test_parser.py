"""The §6.4 parser: unit cases for each rule and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.prime.parser import ParsedFile, ParseError, parse_files, representable, serialize_files
from core.prime.writer import lexical_path_problem


def P(text: str) -> list[tuple[str, str]]:
    return [(f.path, f.content) for f in parse_files(text)]


# --- unit cases ---------------------------------------------------------------------------


def test_basic_blocks_and_text_outside_is_ignored():
    text = ('Sure! Here it is.\n```\n<file path="a.py">\nprint(1)\n</file:end>\n'
            "some prose\n</file:end>\n"  # a stray closing line outside a block is ignored
            '<file path="pkg/b.txt">\n\n  two  \n</file:end>\n```\nbye')
    files = parse_files(text)
    assert [(f.path, f.content, f.line) for f in files] == [
        ("a.py", "print(1)\n", 3), ("pkg/b.txt", "\n  two  \n", 8)]


def test_empty_block_is_the_empty_file():
    assert P('<file path="empty">\n</file:end>') == [("empty", "")]


def test_content_is_kept_byte_for_byte_including_cr_and_odd_separators():
    text = '<file path="x">\r\nline one\r\n\ttab\x0cform\u2028sep  \r\n</file:end>\r\n'
    assert P(text) == [("x", "line one\r\n\ttab\x0cform\u2028sep  \r\n")]


def test_closing_line_must_be_exact():
    text = '<file path="a">\n </file:end>\n</file:end> \n</FILE:END>\n</file:end>\n'
    assert P(text) == [("a", " </file:end>\n</file:end> \n</FILE:END>\n")]


@pytest.mark.parametrize("line,reason", [
    ("<file path='a.py'>", "double quotes, not single"),
    ("<file path=a.py>", "must be in double quotes"),
    ('<file path="a.py>', "unterminated quote"),
    ('<file path="a.py" mode="x">', "only path="),
    ('<file path="a.py">trailing', "unexpected text after '>'"),
    ('<file path="a.py"', "must end with '>'"),
    ("<file>", "expected a space"),
    ('<file  path="a.py">', "single spaces"),
    ('<file path = "a.py">', "single spaces"),
    ('<file name="a.py">', "only attribute must be path"),
    ("<files>", "expected a space"),
])
def test_malformed_opening_lines(line, reason):
    with pytest.raises(ParseError) as ei:
        parse_files(f"intro\n{line}\nx\n</file:end>\n")
    assert ei.value.code == "malformed-open" and ei.value.line == 2
    assert reason in ei.value.message


def test_indented_opening_line_is_an_error_but_indented_prose_is_not():
    with pytest.raises(ParseError) as ei:
        parse_files('  <file path="a.py">\nx\n</file:end>\n')
    assert ei.value.code == "malformed-open" and ei.value.line == 1 and "indented" in ei.value.message
    assert P('    <filename> is a word\n<file path="a">\n</file:end>') == [("a", "")]


def test_empty_path():
    with pytest.raises(ParseError) as ei:
        parse_files('\n<file path="">\n</file:end>\n')
    assert (ei.value.code, ei.value.line) == ("empty-path", 2)


@pytest.mark.parametrize("path,code", [
    ("/etc/passwd", "unsafe-path"), ("../up.py", "unsafe-path"), ("a\\b.py", "unsafe-path"),
    ("C:/x.py", "unsafe-path"), ("a//b", "unsafe-path"), ("./a", "unsafe-path"),
    ("manifest.json", "reserved-path"), ("spec/prime.md", "reserved-path"), ("Manifest.JSON", "reserved-path"),
])
def test_unsafe_and_reserved_paths_are_parse_errors(path, code):
    with pytest.raises(ParseError) as ei:
        parse_files(f'ok\n<file path="{path}">\nx\n</file:end>\n')
    assert (ei.value.code, ei.value.line) == (code, 2)


def test_path_checks_can_be_left_to_the_writer():
    assert parse_files('<file path="../x">\n</file:end>', check_paths=False)[0].path == "../x"


def test_duplicate_path_names_both_lines():
    with pytest.raises(ParseError) as ei:
        parse_files('<file path="a">\n</file:end>\n\n<file path="a">\n</file:end>\n')
    assert (ei.value.code, ei.value.line) == ("duplicate-path", 4)
    assert "first opened on line 1" in ei.value.message


def test_nested_opening_inside_a_block():
    text = '<file path="a.py">\nx = 1\n<file path="b.py">\ny = 2\n</file:end>\n'
    with pytest.raises(ParseError) as ei:
        parse_files(text)
    assert (ei.value.code, ei.value.line) == ("nested-block", 3)
    assert "'a.py'" in ei.value.message and "opened on line 1" in ei.value.message
    with pytest.raises(ParseError) as ei:
        parse_files('<file path="a.xml">\n<files>\n</file:end>\n')
    assert ei.value.code == "nested-block"


def test_unterminated_block_reports_the_opening_line():
    with pytest.raises(ParseError) as ei:
        parse_files('a\n<file path="ok">\n</file:end>\nb\n<file path="cut.py">\nprint(1)\n')
    assert (ei.value.code, ei.value.line) == ("unterminated-block", 5)
    assert "cut.py" in ei.value.message


@pytest.mark.parametrize("text", ["", "just prose\n", "```python\nprint(1)\n```\n", "</file:end>\n"])
def test_no_files(text):
    with pytest.raises(ParseError) as ei:
        parse_files(text)
    assert (ei.value.code, ei.value.line) == ("no-files", 1)


def test_crlf_answers_parse():
    text = '<file path="a.py">\r\nx = 1\r\n</file:end>\r\n'
    assert P(text) == [("a.py", "x = 1\r\n")]


def test_error_message_format():
    err = ParseError(0, "boom", "x")
    assert err.line == 1 and str(err) == "line 1: boom [x]"


def test_serialize_rejects_what_the_format_cannot_carry():
    with pytest.raises(ValueError, match="end with a newline"):
        serialize_files([("a", "no newline")])
    assert serialize_files([("a", "no newline")], normalize=True) == '<file path="a">\nno newline\n</file:end>\n'
    with pytest.raises(ValueError, match="closing marker"):
        serialize_files([("a", "x\n</file:end>\n")])
    with pytest.raises(ValueError, match="starts with '<file'"):
        serialize_files([("a", "<file path=\"b\">\n")])
    with pytest.raises(ValueError, match="opening line"):
        serialize_files([('a"b', "")])
    assert representable("") is None and representable("x\n") is None


def test_serialize_parse_roundtrip_example():
    files = [ParsedFile("a.py", "print('hi')\n"), ParsedFile("empty.txt", ""), ParsedFile("d/e f.md", "\n\n")]
    back = parse_files(serialize_files(files))
    assert [(f.path, f.content) for f in back] == [(f.path, f.content) for f in files]


# --- properties ---------------------------------------------------------------------------

MARKERISH = st.sampled_from([
    '<file path="a.py">', '<file path="b/c.txt">', '<file path="">', "<file path='q'>", "</file:end>",
    "</file:end>\r", '<file path="a.py">\r', "<file", "<files>", '  <file path="x">', '<file path="../x">',
    '<file path="manifest.json">', "", "text", "```", "\r", '<file path="a.py" x="1">',
])
LINES = st.lists(st.one_of(MARKERISH, st.text(max_size=20)), max_size=40)


def check_outcome(text: str) -> None:
    try:
        files = parse_files(text)
    except ParseError as exc:
        assert 1 <= exc.line <= text.count("\n") + 1
        assert exc.message and exc.code
        return
    assert files, "success means at least one file"
    lines = text.split("\n")
    for f in files:
        assert isinstance(f, ParsedFile) and f.path
        assert lines[f.line - 1].rstrip("\r") == f'<file path="{f.path}">'
    assert len({f.path for f in files}) == len(files)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_never_crashes(text):
    check_outcome(text)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
def test_marker_heavy_text_never_crashes(lines):
    check_outcome("\n".join(lines))


SEGMENT_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters='/\\"\x00\x7f')
SEGMENT = st.text(SEGMENT_CHARS, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
SAFE_PATH = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join).filter(
    lambda p: lexical_path_problem(p) is None)
CONTENT_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=30).filter(
    lambda ln: not ln.rstrip("\r").startswith("<file") and ln.rstrip("\r") != "</file:end>"
    and ln.removesuffix("\r") != "</file:end>")
CONTENT = st.lists(CONTENT_LINE, max_size=12).map(lambda ls: "".join(ln + "\n" for ln in ls))
FILES = st.lists(st.tuples(SAFE_PATH, CONTENT), min_size=1, max_size=6, unique_by=lambda t: t[0])


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES, st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda s: "<file" not in s and "</file:end>" not in s), st.booleans())
def test_serialize_then_parse_round_trips(files, prose, with_prose):
    text = serialize_files(files)
    if with_prose:
        text = prose + "\n" + text + prose  # prose before and after is ignored
    back = parse_files(text)
    assert [(f.path, f.content) for f in back] == files


@settings(max_examples=1000, deadline=None)
@given(FILES)
def test_every_parsed_file_is_representable_again(files):
    back = parse_files(serialize_files(files))
    assert serialize_files(back) == serialize_files(files)
    assert all(representable(f.content) is None for f in back)
