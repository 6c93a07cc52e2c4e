"""Charts as plain data for one SVG template (taskapp/templates/taskapp/_chart.html): drawn on the
server from the report's rows, so no JavaScript and nothing added to the Lambda package.

Sized for phones first: the SVG is as wide as the page and has no viewBox, so its text is drawn at
the page's own size on any screen. Positions across are percentages of the width (SVG allows them
for rect, line and text), heights are CSS pixels; only the stacked areas need a stretched drawing
(a nested SVG with preserveAspectRatio="none", in AREA_WIDTH units across). Every mark has a
<title> (a tooltip), the chart has a title and a one-sentence description for screen readers, and
the page shows the figures in a table under it.

Colours are from the Okabe-Ito palette, told apart with the common kinds of colour blindness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

PLOT_TOP = 12  # room for the top tick's label
PLOT_HEIGHT = 200
LABEL_BAND = 24  # category labels under the plot
AREA_WIDTH = 1000
ROW_HEIGHT = 44  # horizontal bars: a label line, then the bar
LABEL_ROOM = 30  # characters of category labels that fit across a phone, with gaps between them
BLUE, SKY, ORANGE, GREEN = "#0072B2", "#56B4E9", "#E69F00", "#009E73"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


@dataclass(frozen=True)
class Bar:
    """A rectangle: x and width in % of the chart's width, y and height in px."""

    x: float
    width: float
    y: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Area:
    points: str  # in AREA_WIDTH x PLOT_HEIGHT units
    color: str
    title: str


@dataclass(frozen=True)
class Text:
    x: float  # %
    y: float  # px
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    title: str
    description: str
    series: list[Series]
    height: int = PLOT_TOP + PLOT_HEIGHT + LABEL_BAND
    bars: list[Bar] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)
    grid: list[Text] = field(default_factory=list)  # a horizontal line at each y, its value as text
    labels: list[Text] = field(default_factory=list)
    plot_top: int = PLOT_TOP
    plot_height: int = PLOT_HEIGHT
    area_width: int = AREA_WIDTH


def number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def scale(top: float, ticks: int = 4, whole: bool = True) -> tuple[float, float]:
    """A round upper bound of the axis and its step (1, 2, 2.5 or 5 times a power of ten) for
    values up to `top`; whole numbers (counts) never get a fractional step."""
    if top <= 0:
        return 1.0, 1.0
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    return step * math.ceil(top / step - 1e-9), step


def _grid(top: float, step: float) -> list[Text]:
    count = round(top / step)
    return [Text(0, _y(i * step, top), number(i * step), "start") for i in range(count + 1)]


def _y(value: float, top: float) -> float:
    return round(PLOT_TOP + PLOT_HEIGHT * (1 - value / top), 2)


def _category_labels(names: Sequence[str], centers: Sequence[float]) -> list[Text]:
    """As many of the names under the plot as fit on a phone, evenly spread from the first to the
    last (which are kept inside the edges)."""
    if not names:
        return []
    fit = max(2, LABEL_ROOM // max(len(name) for name in names))
    shown = sorted({round(i * (len(names) - 1) / (fit - 1)) for i in range(fit)}) if len(names) > fit \
        else range(len(names))
    y = PLOT_TOP + PLOT_HEIGHT + 17
    labels = []
    for i in shown:
        anchor = "start" if centers[i] < 8 else "end" if centers[i] > 92 else "middle"
        x = 0 if anchor == "start" and len(names) > 1 else 100 if anchor == "end" else centers[i]
        labels.append(Text(round(x, 3), y, names[i], anchor))
    return labels


def columns(title: str, description: str, categories: Sequence[str], series: Sequence[Series],
            values: dict[str, Sequence[float | None]], *, unit: str = "", whole: bool = True,
            tooltips: Sequence[str] | None = None) -> Chart:
    """Vertical bars: one group per category, one bar per series (side by side)."""
    top, step = scale(max((v or 0 for s in series for v in values[s.key]), default=0), whole=whole)
    slot = 100 / max(1, len(categories))
    width = slot * 0.8 / max(1, len(series))
    chart = Chart(title, description, list(series), grid=_grid(top, step))
    for i, category in enumerate(categories):
        for j, s in enumerate(series):
            value = values[s.key][i]
            if not value:  # nothing to draw; the table under the chart says 0
                continue
            y = _y(value, top)
            name = tooltips[i] if tooltips else category
            chart.bars.append(Bar(round(slot * (i + 0.1) + width * j, 3), round(width, 3), y,
                                  round(PLOT_TOP + PLOT_HEIGHT - y, 2), s.color,
                                  f"{name} · {s.label}: {number(value)}{unit}"))
    chart.labels = _category_labels(categories, [slot * (i + 0.5) for i in range(len(categories))])
    return chart


def stacked_areas(title: str, description: str, days: Sequence[str], series: Sequence[Series],
                  values: dict[str, Sequence[float]], *, day_labels: Sequence[str] | None = None) -> Chart:
    """Areas stacked in the order of `series` (the first at the bottom), one point per day."""
    totals = [sum(values[s.key][i] for s in series) for i in range(len(days))]
    top, step = scale(max(totals, default=0))
    chart = Chart(title, description, list(reversed(series)), grid=_grid(top, step))  # legend: top first
    if not days:
        return chart
    xs = [AREA_WIDTH * i / (len(days) - 1) for i in range(len(days))] if len(days) > 1 else [0, AREA_WIDTH]
    below = [0.0] * len(days)
    for s in series:
        above = [b + v for b, v in zip(below, values[s.key], strict=True)]
        upper, lower = (above, below) if len(days) > 1 else (above * 2, below * 2)
        line = [f"{x:.1f},{_y(v, top) - PLOT_TOP:.2f}" for x, v in zip(xs, upper, strict=True)]
        back = [f"{x:.1f},{_y(v, top) - PLOT_TOP:.2f}" for x, v in zip(reversed(xs), reversed(lower), strict=True)]
        latest = values[s.key][-1]
        chart.areas.append(Area(" ".join(line + back), s.color, f"{s.label}: {number(latest)} ({days[-1]})"))
        below = above
    centers = [100 * i / (len(days) - 1) for i in range(len(days))] if len(days) > 1 else [50.0]
    chart.labels = _category_labels(day_labels or days, centers)
    return chart


def rows_of_bars(title: str, description: str, names: Sequence[str], series: Sequence[Series],
                 values: dict[str, Sequence[float]], notes: Sequence[str]) -> Chart:
    """Horizontal bars, one row per name: its label and note (its total) above, the series stacked
    along the bar under them. Long lists and long names stay readable on a phone."""
    totals = [sum(values[s.key][i] for s in series) for i in range(len(names))]
    top = max(totals, default=0) or 1  # the longest bar spans the width
    chart = Chart(title, description, list(series), height=ROW_HEIGHT * len(names) + 4)
    for i, name in enumerate(names):
        y = ROW_HEIGHT * i
        chart.labels.append(Text(0, y + 15, f"{name} · {notes[i]}", "start"))
        start = 0.0
        for s in series:
            value = values[s.key][i]
            width = 100 * value / top
            if value:
                chart.bars.append(Bar(round(start, 3), round(width, 3), y + 21, 16, s.color,
                                      f"{name} · {s.label}: {number(value)}"))
            start += width
    return chart
