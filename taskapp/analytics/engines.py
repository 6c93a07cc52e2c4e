"""Where report SQL runs: one interface, two engines, chosen by settings (`engine_for`).

- `AthenaEngine` (AWS): start the query in the reports workgroup, poll with backoff, read the
  result through GetQueryResults' paginator, and turn a failure into `ReportFailed` with a reason
  a user may read (the raw reason, which can quote SQL, goes to the log only).
- `DuckDBEngine` (the emulator, whose Athena runs no SQL, and the benchmark): the exported Parquet
  files in a local directory, the same SQL text translated from Trino to DuckDB by sqlglot.
  `EmulatorEngine` first copies the files from the emulator's S3 into a temporary directory
  (DuckDB's httpfs extension would have to be downloaded, which we cannot rely on).

Report SQL names its parameters (`:user_sub`); each engine binds them as real parameters, never
by pasting values into the text: Athena's ExecutionParameters (positional, each a SQL literal)
and DuckDB's named parameters. Values are dates, booleans and ids made by our own code.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from flask_babel import lazy_gettext as _l

from shared.platform.aws import client
from shared.platform.settings import Settings
from taskapp.analytics.catalog import EXPORT_PREFIX, TABLES

log = logging.getLogger(__name__)
Params = dict[str, str | bool | int | date]
_COMMENT = re.compile(r"--[^\n]*")
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class ReportFailed(RuntimeError):
    """A report could not be produced; `str()` is a reason fit to show the user (never SQL or SDK text).
    Reasons are lazy_gettext strings: English where they are stored, translated on the page."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    bytes_scanned: int | None = None


class Engine(Protocol):
    name: str

    def run(self, sql: str, params: Params) -> QueryResult: ...


def positional(sql: str) -> tuple[str, list[str]]:
    """`sql` with each `:name` turned into `?`, and the names in the order they occur.

    Our report SQL has no string literal or cast containing `:word`; comments are dropped first
    (tests check the result against sqlglot's own reading of every report)."""
    names: list[str] = []

    def take(match: re.Match) -> str:
        names.append(match[1])
        return "?"

    return _PARAMETER.sub(take, _COMMENT.sub("", sql)), names


def _plain(value: Any) -> Any:
    """Result values alike from both engines: numbers stay numbers, dates and times become ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- Athena -----------------------------------------------------------------------------------------

# what a user is told for Athena's error types (AthenaError.ErrorType, from Athena's error catalog)
_EXHAUSTED = _l("The report needed more resources than Athena gives one query; try a shorter period.")
_TIMED_OUT = _l("The report took too long in Athena; please try again later.")
_ATHENA_REASONS = {**dict.fromkeys(range(9), _EXHAUSTED), 206: _TIMED_OUT, 210: _TIMED_OUT}
_SCAN_LIMIT = _l("The report needed to read more data than the reports workgroup allows one query.")
ATHENA_TYPES = {"tinyint": int, "smallint": int, "integer": int, "bigint": int, "double": float, "real": float,
                "float": float, "decimal": float, "boolean": lambda v: v == "true"}


def athena_literal(value: str | bool | int | date) -> str:
    """One ExecutionParameters entry: Athena reads each as a SQL literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = value.isoformat() if isinstance(value, date) else str(value)
    return "'" + text.replace("'", "''") + "'"


def failure_reason(execution: dict) -> Any:
    """A user-fit reason from a GetQueryExecution answer that ended FAILED or CANCELLED."""
    status = execution.get("Status", {})
    if status.get("State") == "CANCELLED":
        return _l("The report query was cancelled.")
    error = status.get("AthenaError") or {}
    reason = str(status.get("StateChangeReason", "")).lower()
    if "scanned" in reason and "limit" in reason:  # the workgroup's BytesScannedCutoffPerQuery
        return _SCAN_LIMIT
    if error.get("ErrorType") in _ATHENA_REASONS:
        return _ATHENA_REASONS[error["ErrorType"]]
    if error.get("Retryable") or error.get("ErrorCategory") == 1:  # 1: SYSTEM, Athena's own trouble
        return _l("Athena could not run the report just now; please try again.")
    return _l("The report query failed in Athena.")


class AthenaEngine:
    name = "athena"

    def __init__(self, database: str, workgroup: str, output_location: str, *, timeout: float = 600,
                 first_wait: float = 0.2, max_wait: float = 5.0, page_size: int = 1000):
        self.database, self.workgroup, self.output_location = database, workgroup, output_location
        self.timeout, self.first_wait, self.max_wait, self.page_size = timeout, first_wait, max_wait, page_size

    def run(self, sql: str, params: Params) -> QueryResult:
        athena = client("athena")
        text, names = positional(sql)
        kwargs: dict[str, Any] = {
            "QueryString": text, "WorkGroup": self.workgroup,
            "QueryExecutionContext": {"Database": self.database},
            # the workgroup enforces its own location in AWS; the emulator uses this one
            "ResultConfiguration": {"OutputLocation": self.output_location},
            "ClientRequestToken": str(uuid.uuid4()),
        }
        if names:
            kwargs["ExecutionParameters"] = [athena_literal(params[name]) for name in names]
        query_id = athena.start_query_execution(**kwargs)["QueryExecutionId"]
        execution = self._wait(athena, query_id)
        state = execution["Status"]["State"]
        if state != "SUCCEEDED":
            status = execution["Status"]
            log.warning("Athena query %s ended %s: %s %s", query_id, state, status.get("StateChangeReason"),
                        status.get("AthenaError"))
            raise ReportFailed(failure_reason(execution))
        columns, rows = self._results(athena, query_id)
        return QueryResult(columns, rows, execution.get("Statistics", {}).get("DataScannedInBytes"))

    def _wait(self, athena, query_id: str) -> dict:
        """Poll until the query ends: waits grow from `first_wait` by half each time up to `max_wait`."""
        deadline, wait = time.monotonic() + self.timeout, self.first_wait
        while True:
            execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return execution
            if time.monotonic() + wait > deadline:
                athena.stop_query_execution(QueryExecutionId=query_id)
                log.warning("Athena query %s still %s after %ss: stopped", query_id, execution["Status"]["State"],
                            self.timeout)
                raise ReportFailed(_l("The report took too long and was stopped; please try again later."))
            time.sleep(wait)
            wait = min(wait * 1.5, self.max_wait)

    def _results(self, athena, query_id: str) -> tuple[list[str], list[tuple]]:
        columns: list[str] = []
        convert: list = []
        rows: list[tuple] = []
        pages = athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=query_id, PaginationConfig={"PageSize": self.page_size})
        for page in pages:
            result = page["ResultSet"]
            data = [[cell.get("VarCharValue") for cell in row["Data"]] for row in result["Rows"]]
            if not columns:
                info = result["ResultSetMetadata"]["ColumnInfo"]
                columns = [c["Name"] for c in info]
                convert = [ATHENA_TYPES.get(c["Type"].lower(), str) for c in info]
                data = data[1:]  # a SELECT's first row repeats the column names
            rows.extend(tuple(None if v is None else f(v) for f, v in zip(convert, row, strict=False))
                        for row in data)
        return columns, rows


# --- DuckDB -----------------------------------------------------------------------------------------

_DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "date": "DATE", "timestamp": "TIMESTAMP",
                 "array<string>": "VARCHAR[]"}


@cache
def to_duckdb(sql: str) -> str:
    """The Trino (Athena) SQL in DuckDB's dialect; `:name` parameters become `$name`."""
    import sqlglot

    return sqlglot.transpile(sql, read="athena", write="duckdb")[0]


class DuckDBEngine:
    """The report SQL over exported files in `root` (laid out as in the bucket: exports/<table>/dt=.../)."""

    name = "duckdb"

    def __init__(self, root: Path, *, profile: bool = False):
        self.root, self.profile = Path(root), profile

    def connect(self):
        import duckdb

        con = duckdb.connect(config={"enable_external_access": True, "autoinstall_known_extensions": False,
                                     "autoload_known_extensions": False})
        for table in TABLES:
            files = sorted((self.root / EXPORT_PREFIX / table.name).glob("dt=*/*.parquet"))
            if files:
                listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
                con.execute(f"CREATE VIEW {table.name} AS SELECT * FROM read_parquet([{listing}], "  # noqa: S608
                            "hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true)")
            else:  # nothing exported yet: an empty table of the same shape, so reports give zeros
                columns = ", ".join(f"{c.name} {_DUCKDB_TYPES[c.type]}" for c in table.columns)
                con.execute(f"CREATE TABLE {table.name} ({columns}, dt VARCHAR)")
        return con

    def run(self, sql: str, params: Params) -> QueryResult:
        import duckdb

        translated = to_duckdb(sql)
        wanted = set(re.findall(r"\$([a-z_][a-z0-9_]*)", translated))
        try:
            with self.connect() as con:
                if self.profile:
                    con.execute("PRAGMA enable_profiling = 'json'")
                    con.execute(f"PRAGMA profiling_output = '{self.root / 'profile.json'}'")
                cursor = con.execute(translated, {k: v for k, v in params.items() if k in wanted})
                columns = [d[0] for d in cursor.description]
                rows = [tuple(_plain(v) for v in row) for row in cursor.fetchall()]
        except duckdb.Error as err:  # e.g. a damaged file: the details go to the log, not to the user
            log.warning("DuckDB report query failed: %s", err)
            raise ReportFailed(_l("The report could not be computed from the exported data.")) from err
        return QueryResult(columns, rows, self._bytes_read() if self.profile else None)

    def _bytes_read(self) -> int | None:
        import json

        try:
            return int(json.loads((self.root / "profile.json").read_text())["io"]["total_bytes_read"])
        except (OSError, KeyError, ValueError):
            return None


class EmulatorEngine:
    """DuckDB over the exports in the emulator's S3, copied to a temporary directory per query."""

    name = "duckdb"

    def __init__(self, bucket: str):
        self.bucket = bucket

    def run(self, sql: str, params: Params) -> QueryResult:
        s3 = client("s3")
        with tempfile.TemporaryDirectory(prefix="reports-") as root:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{EXPORT_PREFIX}/"):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(".parquet"):
                        target = Path(root) / obj["Key"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        s3.download_file(self.bucket, obj["Key"], str(target))
            return DuckDBEngine(Path(root)).run(sql, params)


def engine_for(settings: Settings, timeout: float | None = None) -> Engine:
    """Athena in AWS; DuckDB on the emulator, whose Athena accepts queries but runs none. `timeout`:
    how long Athena may take before the query is stopped (a job gives up before Lambda stops it)."""
    bucket = settings.resource("ANALYTICS_BUCKET")
    if settings.is_local:
        return EmulatorEngine(bucket)
    return AthenaEngine(settings.resource("GLUE_DATABASE"), settings.resource("ATHENA_WORKGROUP"),
                        f"s3://{bucket}/athena-results/", **({"timeout": timeout} if timeout is not None else {}))
