"""Each libcst feature detector: one snippet where it fires, one where it must not."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from core.distill import features as F
from core.distill.features import FEATURES, extract_file, generation_features, is_test_path

CODE = "pkg/mod.py"
TEST = "tests/test_mod.py"

# (feature, path, positive snippet, negative snippet)
CASES: list[tuple[str, str, str, str]] = [
    ("monotonic_clock", CODE,
     """
     from time import perf_counter
     def f():
         t0 = perf_counter()
         return perf_counter() - t0
     """,
     """
     import time
     def f():
         return time.time()
     """),
    ("wall_clock_duration", CODE,
     """
     import time
     def f(work):
         start = time.time()
         work()
         return time.time() - start
     """,
     """
     import time
     from datetime import datetime, timezone
     def stamp():
         return {"at": datetime.now(timezone.utc).isoformat(), "t": time.monotonic()}
     """),
    ("retry_backoff", CODE,
     """
     import asyncio
     async def call(fn):
         for attempt in range(3):
             try:
                 return await fn()
             except OSError:
                 await asyncio.sleep(2 ** attempt)
     """,
     """
     import asyncio
     async def poll(fn):
         for _ in range(3):
             await asyncio.sleep(1)
         try:
             return await fn()
         except OSError:
             return None
     """),
    ("bare_except", CODE,
     """
     try:
         x = 1
     except:
         x = 2
     """,
     """
     try:
         x = 1
     except ValueError:
         x = 2
     """),
    ("broad_except", CODE,
     """
     try:
         x = 1
     except (ValueError, Exception) as exc:
         raise RuntimeError("boom") from exc
     """,
     """
     try:
         x = 1
     except (ValueError, KeyError) as exc:
         raise RuntimeError("boom") from exc
     """),
    ("swallowed_exception", CODE,
     """
     def f():
         try:
             g()
         except Exception:
             pass
     """,
     """
     import logging
     log = logging.getLogger(__name__)
     def f():
         try:
             g()
         except Exception:
             log.exception("g failed")
             raise
         try:
             g()
         except KeyError:
             pass
     """),
    ("specific_excepts", CODE,
     """
     def f(d):
         try:
             return d["k"]
         except (KeyError, TypeError) as exc:
             raise ValueError(str(exc)) from exc
     """,
     """
     def f(d):
         try:
             return d["k"]
         except KeyError:
             return None
         except Exception:
             return None
     """),
    ("typed_functions", CODE,
     """
     class A:
         def m(self, x: int, *args: str, **kw: float) -> int:
             return x
     def f(a: int, b: str = "") -> str:
         return b * a
     """,
     """
     def f(a, b: str = ""):
         return b * a
     def g(x):
         return x
     """),
    ("pydantic_models", CODE,
     """
     from pydantic import BaseModel
     class Req(BaseModel):
         spec: str
     """,
     """
     from typing import NamedTuple
     class Req(NamedTuple):
         spec: str
     """),
    ("dataclasses", CODE,
     """
     import dataclasses
     @dataclasses.dataclass(frozen=True)
     class S:
         port: int
     """,
     """
     class S:
         def __init__(self, port):
             self.port = port
     """),
    ("log_fstring", CODE,
     """
     import logging
     logger = logging.getLogger(__name__)
     def f(n):
         logger.info(f"took {n} ms")
     """,
     """
     import logging
     logger = logging.getLogger(__name__)
     def f(n):
         logger.info("took %s ms", n)
         message = f"{n}"
         return message
     """),
    ("print_in_library", CODE,
     """
     def handle(x):
         print("handling", x)
         return x
     """,
     """
     def main():
         print("usage")
     if __name__ == "__main__":
         print("started")
     """),
    ("blocking_in_async", CODE,
     """
     import time
     async def handler(request):
         time.sleep(0.1)
         with open("/dev/null") as fh:
             return fh.read()
     """,
     """
     import asyncio, time
     def sync_work():
         time.sleep(0.1)
     async def handler(request):
         await asyncio.sleep(0.1)
         return await asyncio.to_thread(sync_work)
     """),
    ("hardcoded_abs_path", CODE,
     """
     OUT = "/tmp/prime-output"
     """,
     """
     import os
     OUT = os.environ.get("PRIME_OUTPUT_DIR", "out")
     ROUTE = "/health"
     """),
    ("hardcoded_port", CODE,
     """
     from aiohttp import web
     def main(app):
         web.run_app(app, host="0.0.0.0", port=8401)
     """,
     """
     import os
     from aiohttp import web
     DEFAULT_PORT = 8401
     def main(app):
         web.run_app(app, port=int(os.environ.get("PORT", DEFAULT_PORT)))
     """),
    ("env_config", CODE,
     """
     import os
     GEN = int(os.environ["CAMBRIAN_GENERATION"])
     """,
     """
     import sys
     GEN = int(sys.argv[1])
     """),
    ("unchecked_env_read", CODE,
     """
     import os
     def port():
         return int(os.environ["PORT"])
     """,
     """
     import os
     os.environ["MODE"] = "test"
     PORT = int(os.environ.get("PORT", "8401"))
     if "DEBUG" in os.environ:
         DEBUG = os.environ["DEBUG"]
     try:
         GEN = int(os.environ["CAMBRIAN_GENERATION"])
     except (KeyError, ValueError):
         GEN = 0
     """),
    ("unchecked_input", CODE,
     """
     async def handler(request):
         payload = await request.json()
         return payload["text"]
     """,
     """
     async def handler(request):
         payload = await request.json()
         if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
             return None
         agent = request.headers.get("User-Agent", "")
         return payload["text"] + agent
     """),
    ("unclosed_resource", CODE,
     """
     import aiohttp
     def read(p):
         return open(p).read()
     async def fetch():
         session = aiohttp.ClientSession()
         return session
     """,
     """
     import aiohttp, contextlib
     def read(p):
         with open(p) as fh:
             return fh.read()
     async def fetch(url):
         async with aiohttp.ClientSession() as session:
             return await session.get(url)
     def both(p, q):
         with contextlib.ExitStack() as stack:
             return stack.enter_context(open(p)), stack.enter_context(open(q))
     """),
    ("trivial_asserts", TEST,
     """
     def test_x():
         value = compute()
         assert value == value
         assert True
     """,
     """
     def test_x():
         assert compute() == 3
         assert False or compute()
     """),
    ("weak_asserts", TEST,
     """
     def test_x():
         data = compute()
         assert data is not None
     """,
     """
     def test_x():
         data = compute()
         assert data == {"ok": True}
     """),
    ("dense_asserts", TEST,
     """
     import pytest
     def test_a():
         assert f(1) == 2
         assert f(2) == 4
     def test_b():
         with pytest.raises(ValueError):
             f(-1)
         assert f(0) == 0
     """,
     """
     def test_a():
         assert f(1) == 2
     def test_b():
         f(2)
     """),
    ("docstrings", CODE,
     '''
     """Module."""
     class A:
         """An A."""
     def f():
         """Do f."""
     ''',
     """
     class A:
         pass
     def f():
         return 1
     """),
]


def _value(feature: str, path: str, src: str) -> bool:
    return generation_features(1, {path: textwrap.dedent(src).encode()}).values[feature]


def test_every_feature_has_a_case():
    assert sorted(c[0] for c in CASES) == sorted(f.name for f in FEATURES)
    assert len(FEATURES) >= 12


@pytest.mark.parametrize("feature,path,pos,neg", CASES, ids=[c[0] for c in CASES])
def test_detector_positive(feature, path, pos, neg):
    assert _value(feature, path, pos) is True


@pytest.mark.parametrize("feature,path,pos,neg", CASES, ids=[c[0] for c in CASES])
def test_detector_negative(feature, path, pos, neg):
    assert _value(feature, path, neg) is False


def test_scoped_features_ignore_the_other_kind_of_file():
    # print in a test file is not library code; a trivial assert in library code is not a test
    assert _value("print_in_library", TEST, "def test_x():\n    print(1)\n") is False
    assert _value("trivial_asserts", CODE, "assert True\n") is False
    assert _value("print_in_library", "pkg/__main__.py", "print('hi')\n") is False


def test_hits_carry_lines_and_counts():
    ff = extract_file(CODE, "import time\n\n\nx = time.monotonic()\ny = time.monotonic()\n")
    assert ff.counts["monotonic_clock"] == 2
    assert ff.hits["monotonic_clock"] == [4, 5]


def test_generation_aggregates_files_and_keeps_per_file_counts():
    files = {
        "pkg/a.py": b"import time\nt = time.monotonic()\n",
        "pkg/b.py": b"try:\n    pass\nexcept:\n    pass\n",
        "tests/test_a.py": b"def test_x():\n    assert True\n",
        "notes.txt": b"def (",
    }
    gf = generation_features(7, files, lines=True)
    assert gf.python_files == 3
    assert gf.values["monotonic_clock"] and gf.values["bare_except"] and gf.values["trivial_asserts"]
    assert gf.files["pkg/a.py"] == {"monotonic_clock": 1}
    assert gf.files["pkg/b.py"]["bare_except"] == 1
    assert gf.hits["bare_except"] == [("pkg/b.py", 3)]
    assert gf.unparsed == []


def test_unparsable_files_are_reported_not_dropped():
    files = {
        "pkg/ok.py": b"import time\nt = time.monotonic()\n",
        "pkg/bad.py": b"x = 1\ny = = 2\nz = 3\n",
        "pkg/latin.py": b"# -*- coding: ascii -*-\ns = '\xe9'\n",
    }
    gf = generation_features(4, files)
    assert gf.values["monotonic_clock"]
    bad = {u.file: u for u in gf.unparsed}
    assert set(bad) == {"pkg/bad.py", "pkg/latin.py"}
    assert bad["pkg/bad.py"].generation == 4
    assert bad["pkg/bad.py"].line == 2
    assert "syntax error" in bad["pkg/bad.py"].error
    assert "pkg/bad.py" not in gf.files


def test_detection_uses_libcst():
    # the extractor is a libcst visitor over a libcst module; it never touches ``ast``
    src = open(F.__file__, encoding="utf-8").read()
    assert "import ast" not in src and "from ast" not in src
    assert issubclass(F._Extractor, cst.CSTVisitor)


def test_cache_reuses_results_by_content():
    cache = F.FeatureCache()
    a = generation_features(1, {"pkg/a.py": b"import time\nt = time.monotonic()\n"}, cache)
    b = generation_features(2, {"pkg/a.py": b"import time\nt = time.monotonic()\n"}, cache)
    assert a.values == b.values and len(cache._done) == 1


def test_is_test_path():
    assert is_test_path("tests/test_app.py") and is_test_path("pkg/tests/x.py")
    assert is_test_path("conftest.py") and is_test_path("pkg/app_test.py")
    assert not is_test_path("pkg/app.py") and not is_test_path("pkg/testing.py")


def test_snippet():
    assert F.snippet(b"a\nb\nc\nd\n", 2) == "   1 | a\n   2 | b\n   3 | c\n   4 | d"


def test_names_resolve_through_imports_and_aliases():
    src = textwrap.dedent("""
        import time as clock
        from time import perf_counter as pc
        from os import environ
        import datetime as dt
        def f():
            t = clock.monotonic() + pc()
            x = environ["A"]
            return dt.datetime.now() - t
    """).encode()
    v = generation_features(1, {CODE: src}).values
    assert v["monotonic_clock"] and v["env_config"] and v["wall_clock_duration"]
    # a module that defines its own open() does not open files
    own = b"def open(p):\n    return p\n\n\ndef g():\n    return open('x')\n"
    assert generation_features(1, {CODE: own}).values["unclosed_resource"] is False
    # an attribute that merely shares a name is not the stdlib function
    other = b"def f(clock):\n    return clock.time() - 1\n"
    assert generation_features(1, {CODE: other}).values["wall_clock_duration"] is False


def test_env_config_sees_the_mapping_handed_on():
    assert _value("env_config", CODE, "import os\nenv = os.environ\n") is True
    assert _value("env_config", CODE, "import os\nport = os.getenv('PORT')\n") is True
    assert _value("env_config", CODE, "environ = {}\nport = environ['PORT']\n") is False


def test_original_artifacts_paths_and_request_headers():
    # the original Cambrian's artifacts hard-code /workspace: an absolute path like any other
    assert _value("hardcoded_abs_path", CODE, 'OUT = "/workspace/output"\n') is True
    assert _value("hardcoded_abs_path", CODE, 'URL = "/workspace-status"\n') is False
    # a header read by indexing raises KeyError when the client does not send it
    src = "async def mw(request, handler):\n    ua = request.headers['User-Agent']\n    return await handler(request)\n"
    assert _value("unchecked_input", CODE, src) is True
    assert _value("unchecked_input", CODE, src.replace("['User-Agent']", ".get('User-Agent')")) is False
    # a read guarded by a try that catches KeyError is checked
    guarded = "import os\ntry:\n    x = os.environ['X']\nexcept KeyError:\n    x = ''\n"
    assert _value("unchecked_env_read", CODE, guarded) is False
    assert _value("unchecked_env_read", CODE, guarded.replace("KeyError", "ValueError")) is True
    # tests may index os.environ (monkeypatch set it): only library code counts
    assert _value("unchecked_env_read", TEST, "import os\ndef test_x():\n    assert os.environ['X']\n") is False


def test_a_plain_metadata_visit_elsewhere_does_not_break_extraction():
    # libcst caches declared metadata dependencies in a class attribute that subclasses
    # can inherit from CSTVisitor; the extractor must not depend on that cache
    from libcst.metadata import MetadataWrapper

    MetadataWrapper(cst.parse_module("x = 1\n")).visit(cst.CSTVisitor())
    ff = extract_file(CODE, "import time\nstart = time.time()\n")
    assert ff.counts["wall_clock_duration"] == 1 and ff.hits["wall_clock_duration"] == [2]


def test_lines_are_optional():
    src = "import time\nx = time.monotonic()\n"
    assert extract_file(CODE, src, lines=False).hits == {}
    assert extract_file(CODE, src, lines=False).counts == extract_file(CODE, src).counts
    assert F.first_hit(CODE, src.encode(), "monotonic_clock") == 2
    assert F.first_hit(CODE, b"def (", "monotonic_clock") is None
