"""The charts' geometry (taskapp/analytics/charts.py): bars as tall as their values, stacked areas
whose top is the day's total, round axis steps, and as many labels as a phone can show."""

from __future__ import annotations

import pytest

from taskapp.analytics.charts import (
    LABEL_ROOM,
    PLOT_HEIGHT,
    PLOT_TOP,
    Series,
    columns,
    rows_of_bars,
    scale,
    stacked_areas,
)

A, B = Series("a", "A", "#000"), Series("b", "B", "#111")
BASE = PLOT_TOP + PLOT_HEIGHT  # the zero line, in px from the top


@pytest.mark.parametrize(("top", "whole", "expected"), [
    (0, True, (1, 1)), (3, True, (3, 1)), (7, True, (8, 2)), (45, True, (60, 20)), (100, True, (100, 25)),
    (1234, True, (1500, 500)),
    (9.0, False, (10, 2.5)), (0.5, False, (0.6, 0.2)), (0.4, True, (1, 1)),
])
def test_axis_steps_are_round_numbers(top, whole, expected):
    assert scale(top, whole=whole) == pytest.approx(expected)


def test_bars_are_as_tall_as_their_values():
    chart = columns("t", "d", ["w1", "w2", "w3"], [A], {"a": [2, 4, 0]})

    heights = {bar.title.split(" ·")[0]: bar.height for bar in chart.bars}
    assert set(heights) == {"w1", "w2"}, "a zero is not drawn (the table says 0)"
    assert heights["w2"] == pytest.approx(2 * heights["w1"])
    assert heights["w2"] == pytest.approx(PLOT_HEIGHT), "the axis ends at 4, the tallest bar"
    assert all(bar.y + bar.height == pytest.approx(BASE) for bar in chart.bars)
    assert [g.text for g in chart.grid] == ["0", "1", "2", "3", "4"]
    assert all(0 <= bar.x and bar.x + bar.width <= 100 for bar in chart.bars)


def test_grouped_bars_sit_side_by_side_in_their_category():
    chart = columns("t", "d", ["lead", "cycle"], [A, B], {"a": [3.0, 5.0], "b": [9.0, None]}, whole=False, unit=" d")

    lead = [bar for bar in chart.bars if bar.title.startswith("lead")]
    assert [bar.title for bar in lead] == ["lead · A: 3 d", "lead · B: 9 d"]
    assert lead[0].x + lead[0].width == pytest.approx(lead[1].x) and lead[1].x + lead[1].width <= 50
    assert len(chart.bars) == 3, "a missing value (no task) is not drawn"


def test_stacked_areas_end_at_each_days_total():
    days = ["2025-03-01", "2025-03-02", "2025-03-03"]
    chart = stacked_areas("t", "d", days, [A, B], {"a": [1, 2, 3], "b": [0, 2, 1]})

    bottom, top = chart.areas
    upper = [tuple(map(float, point.split(","))) for point in top.points.split()][:3]
    totals = [1, 4, 4]
    assert [y for _, y in upper] == pytest.approx([PLOT_HEIGHT * (1 - t / 4) for t in totals])
    assert [x for x, _ in upper] == [0, 500, 1000]
    assert bottom.title == "A: 3 (2025-03-03)" and [s.key for s in chart.series] == ["b", "a"], "legend: top first"


def test_only_as_many_labels_as_fit_on_a_phone_first_and_last_inside():
    days = [f"2025-03-{d:02d}" for d in range(1, 32)]
    labels = stacked_areas("t", "d", days, [A], {"a": [1] * 31}).labels
    assert len(labels) == LABEL_ROOM // len(days[0]) and labels[0].text == days[0] and labels[-1].text == days[-1]
    assert (labels[0].x, labels[0].anchor, labels[-1].x, labels[-1].anchor) == (0, "start", 100, "end")
    short = columns("t", "d", ["03-01", "03-08"], [A], {"a": [1, 1]}).labels
    assert [label.text for label in short] == ["03-01", "03-08"]


def test_rows_of_bars_stack_along_the_longest_row():
    chart = rows_of_bars("t", "d", ["kim", "lee"], [A, B], {"a": [2, 1], "b": [2, 0]}, ["4 open", "1 open"])

    kim = [bar for bar in chart.bars if bar.title.startswith("kim")]
    assert [bar.width for bar in kim] == [50, 50] and kim[1].x == 50, "the longest row spans the width"
    assert [bar.width for bar in chart.bars if bar.title.startswith("lee")] == [25]
    assert [label.text for label in chart.labels] == ["kim · 4 open", "lee · 1 open"]
