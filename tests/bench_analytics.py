"""Benchmark of the task reports: `make bench` (or `python -m tests.bench_analytics [--tasks N]`).

Generates N tasks (default 1,000,000) with a year of status changes, writes them as the export
does (Parquet, zstd, one file per day partition) and also as gzip JSON lines, then prints for
every report

- the time the local engine (DuckDB, the same SQL translated by sqlglot) takes over the Parquet
  files, for an admin's report on all tasks and for one user's;
- the bytes the query reads in each format (DuckDB's own I/O count). Athena bills and limits the
  bytes it scans the same way: a gzip JSON file is read whole, Parquet only in the columns (and row
  groups) the query needs, and both only in the partitions the query selects.

It lives under tests/ so it is never in a Lambda package (zappa_settings.json excludes tests).
Nothing here touches AWS or the emulator.
"""

# ruff: noqa: S608 - the SQL here is built from our own constants and paths, never from input

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from taskapp.analytics.catalog import EVENTS, EXPORT_PREFIX, SNAPSHOTS, TABLES
from taskapp.analytics.engines import DuckDBEngine
from taskapp.analytics.export import arrow_schema, parquet_bytes
from taskapp.analytics.reports import REPORTS, ReportRequest, Scope, parameters

TODAY = date(2025, 12, 31)
USERS = 2000


def generate(con, tasks: int) -> None:
    """Tables `snapshots` and `events` in DuckDB: `tasks` tasks created over the year before TODAY."""
    start = TODAY - timedelta(days=364)
    con.execute(f"""
        CREATE TABLE base AS
        SELECT i,
               'task-' || lpad(CAST(i AS VARCHAR), 8, '0') AS task_id,
               TIMESTAMP '{start}' + to_seconds(CAST(floor(random() * 364 * 86400) AS BIGINT)) AS created_at,
               CAST(floor(random() * {USERS}) AS INT) AS owner,
               CASE WHEN random() < 0.5 THEN CAST(floor(random() * {USERS}) AS INT) END AS assignee,
               random() AS r_status, random() AS r_started, random() AS r_done, random() AS r_due
        FROM range({tasks}) AS t(i)
    """)
    con.execute("""
        CREATE TABLE lifecycle AS
        SELECT *,
               CASE WHEN r_status < 0.25 THEN NULL
                    WHEN r_started < 0.8 OR r_status < 0.40
                    THEN created_at + to_seconds(CAST(floor(r_started * 10 * 86400) AS BIGINT)) END AS started_at
        FROM base
    """)
    con.execute(f"""
        CREATE TABLE snapshots AS
        SELECT task_id,
               'Task ' || task_id || ': 보고서 준비' AS title,
               CASE WHEN r_status < 0.25 THEN 'TODO' WHEN r_status < 0.40 THEN 'IN_PROGRESS' ELSE 'DONE' END AS status,
               CASE WHEN r_due < 0.2 THEN 'HIGH' WHEN r_due < 0.7 THEN 'MEDIUM' ELSE 'LOW' END AS priority,
               CASE WHEN r_due < 0.5 THEN ['ops'] ELSE ['ops', 'finance'] END AS labels,
               'sub-' || owner AS owner_sub, 'user' || owner || '@example.com' AS owner_email,
               CASE WHEN assignee IS NOT NULL THEN 'sub-' || assignee END AS assignee_sub,
               CASE WHEN assignee IS NOT NULL THEN 'user' || assignee || '@example.com' END AS assignee_email,
               CASE WHEN r_due < 0.7 THEN CAST(created_at AS DATE) + CAST(1 + floor(r_due * 40) AS INT) END
                   AS due_date,
               created_at,
               coalesce(done_at, started_at, created_at) AS updated_at,
               done_at AS completed_at,
               CAST(1 + (started_at IS NOT NULL)::INT + (done_at IS NOT NULL)::INT AS BIGINT) AS version,
               TIMESTAMP '{TODAY} 12:00:00' AS exported_at
        FROM (SELECT *, CASE WHEN r_status >= 0.40 THEN least(
                  coalesce(started_at, created_at) + to_seconds(CAST(floor(r_done * 20 * 86400) AS BIGINT)),
                  TIMESTAMP '{TODAY} 11:00:00') END AS done_at
              FROM lifecycle)
    """)
    con.execute("""
        CREATE TABLE events AS
        SELECT * FROM (
            SELECT s.task_id, 0::BIGINT AS seq, NULL::VARCHAR AS from_status, 'TODO' AS to_status,
                   s.created_at AS changed_at, s.owner_sub AS changed_by
            FROM snapshots s
            UNION ALL
            SELECT s.task_id, 1, 'TODO', 'IN_PROGRESS', l.started_at, s.owner_sub
            FROM snapshots s JOIN lifecycle l USING (task_id) WHERE l.started_at IS NOT NULL
            UNION ALL
            SELECT task_id, 1 + (l.started_at IS NOT NULL)::BIGINT, CASE WHEN l.started_at IS NULL THEN 'TODO'
                   ELSE 'IN_PROGRESS' END, 'DONE', completed_at, owner_sub
            FROM snapshots s JOIN lifecycle l USING (task_id) WHERE completed_at IS NOT NULL
        ) ORDER BY changed_at
    """)


def write_parquet(con, root: Path) -> None:
    """As the export writes: the schema of catalog.py, one zstd Parquet file per day partition."""
    import pyarrow.compute as pc

    snapshot = con.sql("SELECT * FROM snapshots").to_arrow_table().cast(arrow_schema(SNAPSHOTS))
    path = root / SNAPSHOTS.key(TODAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(parquet_bytes(snapshot))
    events = con.sql("SELECT *, CAST(changed_at AS DATE) AS day FROM events").to_arrow_table()
    days = events.column("day")
    for day in pc.unique(days).to_pylist():
        part = events.filter(pc.equal(days, day)).drop_columns(["day"]).cast(arrow_schema(EVENTS))
        path = root / EVENTS.key(day)
        path.parent.mkdir(parents=True)
        path.write_bytes(parquet_bytes(part))


def write_json(con, root: Path) -> None:
    """The same rows as gzip JSON lines (what Athena's JSON SerDe reads), partitioned the same way."""
    (root / EXPORT_PREFIX).mkdir(parents=True)
    con.execute(f"COPY (SELECT *, '{TODAY}' AS dt FROM snapshots) TO '{root / EXPORT_PREFIX / SNAPSHOTS.name}' "
                "(FORMAT json, COMPRESSION gzip, PARTITION_BY (dt))")
    con.execute(f"COPY (SELECT *, CAST(CAST(changed_at AS DATE) AS VARCHAR) AS dt FROM events) "
                f"TO '{root / EXPORT_PREFIX / EVENTS.name}' (FORMAT json, COMPRESSION gzip, PARTITION_BY (dt))")


class JsonEngine(DuckDBEngine):
    """DuckDB over the gzip JSON lines instead of Parquet: only to compare the bytes read."""

    def connect(self):
        import duckdb

        from taskapp.analytics.engines import _DUCKDB_TYPES

        con = duckdb.connect()
        for table in TABLES:
            pattern = str(self.root / EXPORT_PREFIX / table.name / "dt=*" / "*.json.gz")
            columns = ", ".join(f"'{c.name}': '{_DUCKDB_TYPES[c.type]}'" for c in table.columns)
            con.execute(f"CREATE VIEW {table.name} AS SELECT * FROM read_json('{pattern}', "
                        f"format = 'newline_delimited', compression = 'gzip', columns = {{{columns}}}, "
                        "hive_partitioning = true, hive_types = {'dt': VARCHAR})")
        return con


def size(root: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in root.rglob(f"*{suffix}"))


def human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def main(argv: list[str] | None = None) -> int:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        parquet_root, json_root = Path(tmp) / "parquet", Path(tmp) / "json"
        started = time.perf_counter()
        with duckdb.connect() as con:
            con.execute("SELECT setseed(0.42)")
            generate(con, args.tasks)
            [(n_events,)] = con.execute("SELECT count(*) FROM events").fetchall()
            generated = time.perf_counter()
            write_parquet(con, parquet_root)
            written = time.perf_counter()
            write_json(con, json_root)
        print(f"{args.tasks:,} tasks and {n_events:,} status changes over 365 days "
              f"(generated in {generated - started:.1f} s; Parquet written as the export does in "
              f"{written - generated:.1f} s)")
        print(f"on disk: Parquet {human(size(parquet_root, '.parquet'))}, "
              f"gzip JSON lines {human(size(json_root, '.json.gz'))}\n")

        parquet, json = DuckDBEngine(parquet_root, profile=True), JsonEngine(json_root, profile=True)
        header = (f"{'report':<18} {'all tasks':>10} {'one user':>10} {'rows':>7} "
                  f"{'Parquet reads':>14} {'gzip JSON reads':>16} {'ratio':>6}")
        print(header)
        print("-" * len(header))
        admin, user = Scope("sub-0", all_tasks=True), Scope("sub-7")
        window = {"from_day": TODAY - timedelta(days=89), "to_day": TODAY}
        for name, report in REPORTS.items():
            request = ReportRequest(report=name, **(window if report.window_days else {}))
            params = parameters(request, admin, TODAY.isoformat(), TODAY)
            t0 = time.perf_counter()
            result = parquet.run(report.sql, params)
            t1 = time.perf_counter()
            parquet.run(report.sql, parameters(request, user, TODAY.isoformat(), TODAY))
            t2 = time.perf_counter()
            json_bytes = json.run(report.sql, params).bytes_scanned
            ratio = f"{json_bytes / result.bytes_scanned:.1f}x" if json_bytes and result.bytes_scanned else "?"
            print(f"{name:<18} {t1 - t0:>8.2f} s {t2 - t1:>8.2f} s {len(result.rows):>7,} "
                  f"{human(result.bytes_scanned):>14} {human(json_bytes):>16} {ratio:>6}")
        print("\n(all tasks: an admin's report; one user: owned or assigned tasks; windows of 90 days where the "
              "report has one. Times are the local engine over local files, without the copy from S3.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
