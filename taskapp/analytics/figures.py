"""A finished report's figures: read back from its CSV (the one copy of the result), and shown as a
chart with a table of the same figures under it (charts.py draws; this says what each report shows).

    columns, rows, truncated = read_figures(bucket, key)     # numbers as numbers, empty cells as None
    shown = present("weekly_throughput", columns, rows)      # .chart (or None), .headers, .rows
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from flask import g, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from shared.platform.aws import client
from taskapp.analytics.charts import BLUE, GREEN, ORANGE, SKY, Chart, Series, columns, rows_of_bars, stacked_areas

# the most rows read back for the page and the JSON (the CSV has them all): a cumulative flow over
# the longest period (731 days x 3 statuses) fits
MAX_ROWS = 2500
WHOLE = {"tasks", "completed", "days_overdue", "todo", "in_progress", "overdue", "open_tasks"}
DECIMAL = {"p50_days", "p85_days", "p95_days"}
STATUSES = ("TODO", "IN_PROGRESS", "DONE")
COLUMN_LABELS = {
    "day": _l("Day"), "week_start": _l("Week starting"), "completed": _l("Completed"), "measure": _l("Measure"),
    "tasks": _l("Number of tasks"), "p50_days": _l("p50 (days)"), "p85_days": _l("p85 (days)"),
    "p95_days": _l("p95 (days)"),
    "task_id": _l("Task"), "title": _l("Title"), "status": _l("Status"), "priority": _l("Priority"),
    "due_date": _l("Due date"), "days_overdue": _l("Days overdue"), "owner_email": _l("Owner"),
    "assignee_email": _l("Assignee"), "assignee": _l("Assignee"), "todo": _l("To do"),
    "in_progress": _l("In progress"), "overdue": _l("Overdue"), "open_tasks": _l("Open tasks"),
}
MEASURES = {"lead_time": _l("Lead time (created → done)"), "cycle_time": _l("Cycle time (in progress → done)")}


class FiguresGone(Exception):
    """The report's CSV is no longer in the bucket."""


def _value(column: str, text: str) -> Any:
    if text == "":
        return None
    try:
        return int(text) if column in WHOLE else float(text) if column in DECIMAL else text
    except ValueError:
        return text


def read_figures(bucket: str, key: str, limit: int = MAX_ROWS) -> tuple[list[str], list[list], bool]:
    """(columns, the first `limit` rows, whether there were more) of a report's CSV, read as a stream."""
    s3 = client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        raise FiguresGone(key) from None
    with body:
        reader = csv.reader(codecs.getreader("utf-8-sig")(body))
        header = next(reader, [])
        rows = [[_value(c, v) for c, v in zip(header, row, strict=False)] for row in islice(reader, limit + 1)]
    return header, rows[:limit], len(rows) > limit


# --- what each report shows -----------------------------------------------------------------------


@dataclass
class Shown:
    chart: Chart | None
    headers: list[str]
    rows: list[list]
    links: list[str | None] | None = None  # a link for each row's first cell
    empty: str | None = None  # what to say instead of a chart and table when there is nothing


def _status_labels() -> dict[str, str]:
    from taskapp.views import STATUS_LABELS

    return {k: str(v) for k, v in STATUS_LABELS.items()}


def _short_days(days: list[str]) -> list[str]:
    """Axis labels: month-day, or the whole date when the period crosses a year."""
    if days and days[0][:4] != days[-1][:4]:
        return days
    return [d[5:] for d in days]


def _cumulative_flow(title: str, header: list[str], rows: list[list]) -> Shown:
    labels = _status_labels()
    days = list(dict.fromkeys(row[0] for row in rows))
    counts = {status: dict.fromkeys(days, 0) for status in STATUSES}
    for day, status, tasks in rows:
        if status in counts:
            counts[status][day] = tasks or 0
    colors = {"DONE": GREEN, "IN_PROGRESS": ORANGE, "TODO": SKY}
    series = [Series(s, labels[s], colors[s]) for s in reversed(STATUSES)]  # done at the bottom
    last = {s: counts[s][days[-1]] for s in STATUSES} if days else dict.fromkeys(STATUSES, 0)
    description = _("On %(day)s: %(todo)d to do, %(doing)d in progress, %(done)d done.", day=days[-1] if days else "",
                    todo=last["TODO"], doing=last["IN_PROGRESS"], done=last["DONE"])
    chart = stacked_areas(title, description, days, series, {s: list(counts[s].values()) for s in STATUSES},
                          day_labels=_short_days(days))
    headers = [str(COLUMN_LABELS["day"]), *(labels[s] for s in STATUSES)]
    return Shown(chart, headers, [[day, *(counts[s][day] for s in STATUSES)] for day in days])


def _weekly_throughput(title: str, header: list[str], rows: list[list]) -> Shown:
    weeks = [row[0] for row in rows]
    done = [row[1] or 0 for row in rows]
    description = _("%(n)d tasks completed in %(weeks)d weeks.", n=sum(done), weeks=len(weeks))
    chart = columns(title, description, _short_days(weeks), [Series("completed", _("Completed"), BLUE)],
                    {"completed": done}, tooltips=[_("Week of %(day)s", day=w) for w in weeks])
    return Shown(chart, [str(COLUMN_LABELS[c]) for c in header], rows)


def _lead_cycle_time(title: str, header: list[str], rows: list[list]) -> Shown:
    names = [str(MEASURES.get(row[0], row[0])) for row in rows]
    series = [Series("p50_days", "p50", SKY), Series("p85_days", "p85", BLUE), Series("p95_days", "p95", "#003A66")]
    values = {s.key: [row[header.index(s.key)] for row in rows] for s in series}
    parts = [_("%(measure)s: half of %(n)d tasks within %(days)s days", measure=name, n=row[1] or 0,
               days=row[2] if row[2] is not None else "—") for name, row in zip(names, rows, strict=True)]
    chart = columns(title, "; ".join(parts) + ".", names, series, values, unit=" " + _("days"), whole=False)
    table = [[name, *row[1:]] for name, row in zip(names, rows, strict=True)]
    if not any(row[1] for row in rows):
        return Shown(None, [], [], empty=_("No task was completed in this period."))
    return Shown(chart, [str(COLUMN_LABELS[c]) for c in header], table)


def _overdue(title: str, header: list[str], rows: list[list]) -> Shown:
    """A table (task_id, title, status, priority, due_date, days_overdue, owner_email, assignee_email):
    the title links to the task where the reader may open it (their own or assigned to them)."""
    from taskapp.views import PRIORITY_LABELS

    labels, me = _status_labels(), g.identity.email
    shown = [[row[1], labels.get(row[2], row[2]), str(PRIORITY_LABELS.get(row[3], row[3])), *row[4:]] for row in rows]
    links = [url_for("main.detail", task_id=row[0]) if me in (row[6], row[7]) else None for row in rows]
    return Shown(None, [str(COLUMN_LABELS[c]) for c in header[1:]], shown, links,
                 _("No overdue tasks.") if not rows else None)


def _workload(title: str, header: list[str], rows: list[list]) -> Shown:
    labels = _status_labels()
    series = [Series("todo", labels["TODO"], SKY), Series("in_progress", labels["IN_PROGRESS"], ORANGE)]
    notes = [_("%(open)d open, %(overdue)d overdue", open=row[4], overdue=row[3]) if row[3]
             else _("%(open)d open", open=row[4]) for row in rows]
    description = _("%(tasks)d open tasks for %(people)d people.", tasks=sum(row[4] for row in rows), people=len(rows))
    chart = rows_of_bars(title, description, [row[0] for row in rows], series,
                         {"todo": [row[1] for row in rows], "in_progress": [row[2] for row in rows]}, notes)
    return Shown(chart if rows else None, [str(COLUMN_LABELS[c]) for c in header], rows,
                 empty=_("No open tasks.") if not rows else None)


PRESENTERS: dict[str, Callable[[str, list[str], list[list]], Shown]] = {
    "cumulative_flow": _cumulative_flow, "weekly_throughput": _weekly_throughput,
    "lead_cycle_time": _lead_cycle_time, "overdue": _overdue, "workload": _workload,
}


def present(report: str, title: str, header: list[str], rows: list[list]) -> Shown:
    """The chart (None for a list) and the table of one report's rows, in the reader's language."""
    return PRESENTERS[report](title, header, rows)
