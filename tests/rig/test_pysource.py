"""Host-side parsing is safe from many threads at once (the engine runs rig jobs in threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rig.pysource import parse_python

SOURCES = [
    b"def f(x):\n    return [y for y in range(x) if y % 2]\n" * 200,
    b"class A:\n    def m(self, a, b=1, *c, **d):\n        return {a: (b, c, d)}\n" * 200,
    b"def broken(:\n    pass\n",
    b"x = " + b"(" * 50 + b"1" + b")" * 50 + b"\n",
]


def test_parse_from_many_threads_never_raises():
    def work(i: int):
        return parse_python(SOURCES[i % len(SOURCES)])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(400)))
    assert sum(r is None for r in results) == 100  # exactly the broken source, every time
    assert all(r is not None for i, r in enumerate(results) if i % len(SOURCES) != 2)
