"""Whole-number x ticks on the charts, checked on plotext's real rendering."""

from __future__ import annotations

import re

import plotext
import pytest

from cambrian_tui.widgets.charts import int_ticks

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def x_labels(xs: list[int], ticks: bool) -> list[str]:
    plotext.clear_figure()
    plotext.plot(xs, [40 + k for k in range(len(xs))])
    if ticks:
        int_ticks(plotext, xs)
    plotext.plotsize(60, 12)
    return ANSI.sub("", plotext.build()).rstrip().splitlines()[-1].split()


def test_plotext_alone_labels_a_two_point_axis_with_fractions():
    # the reason int_ticks exists (an evolution with only the base and one observation)
    assert "0.50" in x_labels([0, 1], ticks=False)


@pytest.mark.parametrize("xs, want", [
    ([0, 1], ["0", "1"]),
    ([3], ["3"]),
    ([0, 2, 5], ["0", "1", "2", "3", "4", "5"]),
    (list(range(0, 41)), ["0", "10", "20", "30", "40"]),
    (list(range(0, 8)), ["0", "2", "4", "6"]),  # evenly spaced, not 0 2 4 5 7
    (list(range(425, 447)), ["425", "430", "435", "440", "445"]),
    (list(range(3, 1004)), ["200", "400", "600", "800", "1000"]),
])
def test_int_ticks_label_whole_numbers(xs, want):
    assert x_labels(xs, ticks=True) == want
