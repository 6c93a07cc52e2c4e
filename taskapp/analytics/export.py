"""The export: every task in DynamoDB -> Parquet partitions under s3://ANALYTICS_BUCKET/exports/.

One run reads the tasks table once (a parallel Scan: an export legitimately reads everything,
unlike the user-facing lists) and writes

- task_snapshots/dt=<today>: every task as it is now;
- task_events/dt=<day>: the status changes from the tasks' histories that happened on <day>,
  for yesterday and today (a run after midnight completes yesterday), or every day with
  `all_history` (the first export, or a repair).

Days are local (KST). Each partition is one object written with one PUT, so a re-run replaces a
day rather than adding to it, and a reader sees the old day or the new one, never a mix; a day
left with no events loses its partition. Run hourly by the Zappa schedule of the `analytics_*`
stages (`handler`), by an admin's button in taskapp (`request_export`), or by hand:

    python -m taskapp.analytics.export [--all-history]

pyarrow writes the Parquet. It is far too big for an app's zip, so it is a dev dependency here
and, in AWS, comes from the AWS-managed "AWS SDK for pandas" layer of the dedicated
`analytics_*` function (zappa_settings.json); it is imported only when an export runs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.errors import Forbidden
from shared.platform.settings import Settings
from taskapp.analytics.catalog import EVENTS, SNAPSHOTS, ExportTable, local_time, local_today

log = logging.getLogger(__name__)
SCAN_SEGMENTS = 4
ROW_GROUP_ROWS = 128 * 1024
# the task attributes the export reads (never the description: it is not analysed, and it is the bulk)
TASK_ATTRIBUTES = ("task_id", "title", "status", "priority", "labels", "owner_sub", "owner_email", "assignee_sub",
                   "assignee_email", "due_date", "created_at", "updated_at", "completed_at", "version", "history")


@dataclass
class ExportSummary:
    day: str
    tasks: int
    events: dict[str, int] = field(default_factory=dict)  # day -> status changes written (0: partition removed)
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# --- reading --------------------------------------------------------------------------------------


def scan_tasks(table: str, segments: int = SCAN_SEGMENTS) -> list[dict]:
    """Every task item of the table, as Python values; the segments are read in parallel."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    names = {f"#a{i}": name for i, name in enumerate(TASK_ATTRIBUTES)}

    def segment(number: int) -> list[dict]:
        ddb = client("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": table, "Segment": number, "TotalSegments": segments,
            "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": {**names, "#sk": "sk"},
            # the table is single-table design: only the task items themselves
            "FilterExpression": "#sk = :task", "ExpressionAttributeValues": {":task": {"S": "TASK"}},
        }
        items = []
        while True:
            page = ddb.scan(**kwargs)
            items.extend({k: deserializer.deserialize(v) for k, v in raw.items()} for raw in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(max_workers=segments) as pool:
        return [task for part in pool.map(segment, range(segments)) for task in part]


def _time(value: str | None) -> datetime | None:
    return local_time(value) if value else None


def snapshot_rows(tasks: list[dict], exported_at: datetime) -> list[dict]:
    at = local_time(exported_at)
    return [{
        "task_id": t["task_id"], "title": t.get("title", ""), "status": t["status"], "priority": t.get("priority"),
        "labels": list(t.get("labels") or []), "owner_sub": t["owner_sub"], "owner_email": t.get("owner_email"),
        "assignee_sub": t.get("assignee_sub"), "assignee_email": t.get("assignee_email"),
        "due_date": date.fromisoformat(t["due_date"]) if t.get("due_date") else None,
        "created_at": _time(t["created_at"]), "updated_at": _time(t.get("updated_at")),
        "completed_at": _time(t.get("completed_at")), "version": int(t.get("version", 1)), "exported_at": at,
    } for t in tasks]


def event_rows(tasks: list[dict]) -> dict[date, list[dict]]:
    """The status changes of every task's history, grouped by the local day they happened."""
    by_day: dict[date, list[dict]] = defaultdict(list)
    for task in tasks:
        for seq, change in enumerate(task.get("history") or []):
            at = local_time(change["at"])
            by_day[at.date()].append({"task_id": task["task_id"], "seq": seq, "from_status": change.get("from"),
                                      "to_status": change["to"], "changed_at": at, "changed_by": change.get("by")})
    return by_day


# --- writing --------------------------------------------------------------------------------------


def arrow_schema(table: ExportTable):
    import pyarrow as pa

    types = {"string": pa.string(), "bigint": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("ms"),
             "array<string>": pa.list_(pa.string())}
    return pa.schema([(c.name, types[c.type]) for c in table.columns])


def to_parquet(table: ExportTable, rows: list[dict]) -> bytes:
    import pyarrow as pa

    return parquet_bytes(pa.Table.from_pylist(rows, schema=arrow_schema(table)))


def parquet_bytes(arrow_table) -> bytes:
    """One partition's file, as every export writes it (the benchmark writes its data with this too)."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(arrow_table, buffer, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return buffer.getvalue()


def replace_partition(bucket: str, table: ExportTable, day: date | str, body: bytes | None) -> str | None:
    """Make the partition of `day` hold exactly `body` (None: nothing); the key written, if any."""
    s3 = client("s3")
    key = table.key(day) if body is not None else None
    if key:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet")
    stale = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=table.partition_prefix(day)) for obj in page.get("Contents", []) if obj["Key"] != key]
    if stale:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale], "Quiet": True})
    return key


def partition_days(bucket: str, table: ExportTable) -> list[str]:
    """The days (YYYY-MM-DD) that have a partition of `table`, in order."""
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=table.prefix, Delimiter="/")
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    return sorted(p[len(table.prefix):].strip("/").removeprefix("dt=") for p in prefixes)


def latest_export_at(bucket: str) -> str | None:
    """When the newest snapshot was written (UTC, ISO 8601), None before the first export: the time
    the reports' data is as of (the hourly schedule makes it at most about an hour old)."""
    days = partition_days(bucket, SNAPSHOTS)
    if not days:
        return None
    listed = client("s3").list_objects_v2(Bucket=bucket, Prefix=SNAPSHOTS.partition_prefix(days[-1]))
    times = [obj["LastModified"] for obj in listed.get("Contents", [])]
    return max(times).astimezone(UTC).isoformat().replace("+00:00", "Z") if times else None


def export(now: datetime | None = None, *, all_history: bool = False, settings: Settings | None = None,
           segments: int = SCAN_SEGMENTS) -> ExportSummary:
    """Export the tasks as of `now` (default: the current time); see the module docstring."""
    settings = settings or Settings.load("taskapp")
    bucket = settings.resource("ANALYTICS_BUCKET")
    now = now or datetime.now(UTC)
    today = local_today(now)
    tasks = scan_tasks(settings.resource("TASKS_TABLE"), segments)
    summary = ExportSummary(day=today.isoformat(), tasks=len(tasks))
    summary.keys.append(replace_partition(bucket, SNAPSHOTS, today, to_parquet(SNAPSHOTS, snapshot_rows(tasks, now))))

    events = event_rows(tasks)
    if all_history:
        days = set(events) | {date.fromisoformat(d) for d in partition_days(bucket, EVENTS)}
    else:
        days = {today - timedelta(days=1), today}
    for day in sorted(days):
        rows = sorted(events.get(day, []), key=lambda r: (r["changed_at"], r["task_id"], r["seq"]))
        key = replace_partition(bucket, EVENTS, day, to_parquet(EVENTS, rows) if rows else None)
        summary.events[day.isoformat()] = len(rows)
        if key:
            summary.keys.append(key)
    log.info("exported %d tasks as of %s; status changes per day: %s", summary.tasks, summary.day, summary.events)
    return summary


# --- how it is started ----------------------------------------------------------------------------


def handler(event: dict, context: Any) -> dict:
    """The Zappa schedule (and `zappa invoke`, and the admin button's asynchronous invoke in AWS)."""
    return export(all_history=bool((event or {}).get("all_history"))).as_dict()


def request_export(identity: Identity, settings: Settings) -> ExportSummary | None:
    """The admin button. Locally the export runs here and its summary is returned; in AWS the
    analytics function (which has pyarrow) is invoked asynchronously and None is returned."""
    if not identity.is_admin:
        raise Forbidden("Only administrators can start an export")
    if settings.is_local:
        return export(settings=settings)
    try:
        function = settings.resource("ANALYTICS_FUNCTION")
    except KeyError:  # Zappa names the function <project_name>-<stage>
        function = f"daycare-analytics-{settings.stage}"
    client("lambda").invoke(FunctionName=function, InvocationType="Event",
                            Payload=json.dumps({"command": f"{__name__}.handler"}).encode())
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taskapp.analytics.export", description=__doc__.splitlines()[0])
    parser.add_argument("--all-history", action="store_true", help="rewrite the events of every day, not just "
                                                                   "yesterday and today")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(json.dumps(export(all_history=args.all_history).as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
