"""The reports: what can be asked for, whose tasks they cover, and `run_report`, which a job calls.

Each report is one SQL file in reports/ (Athena/Trino dialect), run unchanged on Athena and
translated for DuckDB locally (engines.py). Every report reads the latest snapshot partition
(`:snapshot_dt`, found by listing the bucket, so Athena scans one day of snapshots, not all)
and is limited to a scope: the tasks the user owns or is assigned, or, for an admin who asks,
all tasks (`:user_sub`, `:all_tasks`). Windows are local days (`:from_day`..`:to_day`), and
"overdue" is relative to `:today`.

    request = parse(ReportRequest, {"report": "weekly_throughput"})
    outcome = run_report(request, Scope.of(identity), report_id)   # ReportFailed(reason) on failure
    outcome.key  -> reports/<sub>/<report_id>.csv in ANALYTICS_BUCKET;  outcome.summary -> a small dict
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.csvsafe import write_csv
from shared.platform.errors import Forbidden
from shared.platform.settings import Settings
from taskapp.analytics.catalog import SNAPSHOTS, local_today
from taskapp.analytics.engines import Engine, Params, QueryResult, ReportFailed, engine_for
from taskapp.analytics.export import latest_export_at, partition_days

SQL_DIR = Path(__file__).resolve().parent / "reports"
RESULTS_PREFIX = "reports"
MAX_WINDOW_DAYS = 731
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

__all__ = ["REPORTS", "Report", "ReportFailed", "ReportOutcome", "ReportRequest", "Scope", "run_report"]


# --- what each report is --------------------------------------------------------------------------


def _cumulative_flow(result: QueryResult) -> dict:
    last = max((row[0] for row in result.rows), default=None)
    return {"days": len({row[0] for row in result.rows}), "last_day": last,
            "by_status": {row[1]: row[2] for row in result.rows if row[0] == last}}


def _throughput(result: QueryResult) -> dict:
    total = sum(row[1] for row in result.rows)
    return {"weeks": len(result.rows), "completed": total,
            "per_week": round(total / len(result.rows), 1) if result.rows else 0}


def _lead_cycle(result: QueryResult) -> dict:
    return {row[0]: dict(zip(("tasks", "p50_days", "p85_days", "p95_days"), row[1:], strict=True))
            for row in result.rows}


def _overdue(result: QueryResult) -> dict:
    return {"overdue": len(result.rows), "most_days_overdue": max((row[5] for row in result.rows), default=0)}


def _workload(result: QueryResult) -> dict:
    return {"assignees": len(result.rows), "open_tasks": sum(row[4] for row in result.rows)}


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    window_days: int | None  # the default period, ending today; None: the report is "as of today"
    summarize: Callable[[QueryResult], dict]

    @property
    def sql(self) -> str:
        return _sql(self.name)


@cache
def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


REPORTS = {report.name: report for report in (
    Report("cumulative_flow", _l("Tasks by status over time"), 30, _cumulative_flow),
    Report("weekly_throughput", _l("Weekly throughput"), 12 * 7, _throughput),
    Report("lead_cycle_time", _l("Lead time and cycle time"), 90, _lead_cycle),
    Report("overdue", _l("Overdue tasks"), None, _overdue),
    Report("workload", _l("Workload per assignee"), None, _workload),
)}
ReportName = Literal["cumulative_flow", "weekly_throughput", "lead_cycle_time", "overdue", "workload"]


class ReportRequest(BaseModel):
    """What a user asks for (the JSON body of POST /api/reports, the report form)."""

    model_config = ConfigDict(extra="forbid")

    report: ReportName
    from_day: date | None = None
    to_day: date | None = None
    all_tasks: bool = False

    @field_validator("to_day")
    @classmethod
    def _window(cls, to_day: date | None, info: ValidationInfo):
        from_day = info.data.get("from_day")  # validated first (declared first); absent if it was bad
        if from_day and to_day:
            if from_day > to_day:
                raise ValueError("Must not be before from_day")
            if (to_day - from_day).days >= MAX_WINDOW_DAYS:
                raise ValueError(f"The period can be at most {MAX_WINDOW_DAYS} days")
        return to_day


@dataclass(frozen=True)
class Scope:
    """Whose tasks a report covers: those `user_sub` owns or is assigned, or every task."""

    user_sub: str
    all_tasks: bool = False

    def __post_init__(self):
        if not _ID.match(self.user_sub):
            raise ValueError("not a user id")

    @classmethod
    def of(cls, identity: Identity, all_tasks: bool = False) -> Scope:
        if all_tasks and not identity.is_admin:
            raise Forbidden("Only administrators can report on everyone's tasks")
        return cls(identity.sub, all_tasks)


def parameters(request: ReportRequest, scope: Scope, snapshot_dt: str, today: date) -> Params:
    """The values bound to the report SQL's parameters."""
    window = REPORTS[request.report].window_days or 1
    to_day = request.to_day or today
    from_day = request.from_day or to_day - timedelta(days=window - 1)
    return {"snapshot_dt": snapshot_dt, "user_sub": scope.user_sub, "all_tasks": scope.all_tasks,
            "from_day": from_day.isoformat(), "to_day": to_day.isoformat(), "today": today.isoformat()}


# --- running one ----------------------------------------------------------------------------------


@dataclass
class ReportOutcome:
    report: str
    bucket: str
    key: str  # the CSV
    columns: list[str]
    rows: int
    summary: dict
    parameters: dict
    engine: str
    bytes_scanned: int | None
    exported_at: str | None = None  # when the snapshot the report read was written (UTC)

    def as_dict(self) -> dict:
        return asdict(self)


def result_key(scope: Scope, report_id: str) -> str:
    return f"{RESULTS_PREFIX}/{scope.user_sub}/{report_id}.csv"


def to_csv(result: QueryResult) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs read Korean text right; no formula cells."""
    return write_csv(result.columns, result.rows)


def run_report(request: ReportRequest, scope: Scope, report_id: str, *, settings: Settings | None = None,
               engine: Engine | None = None, now: datetime | None = None) -> ReportOutcome:
    """Run one report for `scope`, store its result as CSV in ANALYTICS_BUCKET, and say where.

    Raises ReportFailed with a reason fit to show the user (no data exported yet, the query
    failed in Athena...). The engine comes from settings unless one is given (the benchmark).
    """
    if not _ID.match(report_id):
        raise ValueError("not a report id")
    settings = settings or Settings.load("taskapp")
    bucket = settings.resource("ANALYTICS_BUCKET")
    snapshots = partition_days(bucket, SNAPSHOTS)
    if not snapshots:
        raise ReportFailed(_l("No task data has been exported yet. Exports run every hour; an administrator "
                              "can also start one now."))
    report = REPORTS[request.report]
    params = parameters(request, scope, snapshots[-1], local_today(now))
    engine = engine or engine_for(settings)
    result = engine.run(report.sql, params)
    key = result_key(scope, report_id)
    client("s3").put_object(Bucket=bucket, Key=key, Body=to_csv(result), ContentType="text/csv; charset=utf-8")
    return ReportOutcome(report=report.name, bucket=bucket, key=key, columns=result.columns, rows=len(result.rows),
                         summary=report.summarize(result), parameters=params,
                         engine=engine.name, bytes_scanned=result.bytes_scanned,
                         exported_at=latest_export_at(bucket))
