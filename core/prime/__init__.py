"""Prime's machinery inside Cambrian: prompt → provider → parser → safe writer → manifest."""

from core.prime.parser import ParsedFile, ParseError, parse_files, serialize_files

__all__ = ["ParsedFile", "ParseError", "parse_files", "serialize_files"]
