"""The exported tables, declared once: the export writes them, provisioning registers them in Glue,
and the local engine gives DuckDB the same schema.

Layout: s3://<ANALYTICS_BUCKET>/exports/<table>/dt=YYYY-MM-DD/part-0000.parquet, one file per
partition, so re-writing a day is a single PUT that replaces it (never a duplicate, never a gap).

Why Parquet (zstd) rather than gzip JSON lines: Athena bills and limits the bytes a query scans.
A gzip JSON file is read whole whatever the query needs; Parquet is read column by column, and
every report touches 3 to 8 of the snapshot's 15 columns. On disk the two are about the same size
(53 vs 61 MiB for 1,000,000 tasks and a year of status changes), but measured with `make bench`
each report reads 1.5 to 11 times fewer bytes from Parquet (README, "Task analytics").

Dates and times are the agency's local time (KST, UTC+9, no daylight saving), as naive
timestamps: every report counts by local day, and the same SQL then needs no time-zone
functions (which the two engines spell differently). `dt` is the local day too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from shared.platform.clock import KST

EXPORT_PREFIX = "exports"
PART_NAME = "part-0000.parquet"
FIRST_DAY = "2024-01-01"  # partition projection starts here; no task is older


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Glue/Athena (Hive DDL) type
    comment: str = ""


@dataclass(frozen=True)
class ExportTable:
    name: str
    description: str
    columns: tuple[Column, ...]

    @property
    def prefix(self) -> str:
        return f"{EXPORT_PREFIX}/{self.name}/"

    def partition_prefix(self, day: date | str) -> str:
        return f"{self.prefix}dt={day}/"

    def key(self, day: date | str) -> str:
        return self.partition_prefix(day) + PART_NAME

    def glue_input(self, bucket: str) -> dict:
        """The Glue TableInput: Parquet, partitioned by dt with partition projection (no partitions to manage)."""
        location = f"s3://{bucket}/{self.prefix}"
        return {
            "Name": self.name,
            "Description": self.description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                "projection.enabled": "true",
                "projection.dt.type": "date",
                "projection.dt.format": "yyyy-MM-dd",
                # local days run up to 9 hours ahead of UTC, which is what NOW means to Athena
                "projection.dt.range": f"{FIRST_DAY},NOW+1DAYS",
                "projection.dt.interval": "1",
                "projection.dt.interval.unit": "DAYS",
                "storage.location.template": f"{location}dt=${{dt}}/",
            },
            "PartitionKeys": [{"Name": "dt", "Type": "string", "Comment": "local day (KST), YYYY-MM-DD"}],
            "StorageDescriptor": {
                "Columns": [{"Name": c.name, "Type": c.type, "Comment": c.comment} for c in self.columns],
                "Location": location,
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                              "Parameters": {"serialization.format": "1"}},
            },
        }


SNAPSHOTS = ExportTable(
    "task_snapshots",
    "Every task as it was when the day's export ran (the latest run of the day wins).",
    (
        Column("task_id", "string"),
        Column("title", "string"),
        Column("status", "string", "TODO, IN_PROGRESS or DONE"),
        Column("priority", "string", "LOW, MEDIUM or HIGH"),
        Column("labels", "array<string>"),
        Column("owner_sub", "string", "Cognito sub of the owner"),
        Column("owner_email", "string"),
        Column("assignee_sub", "string", "Cognito sub of the assignee, null when none"),
        Column("assignee_email", "string"),
        Column("due_date", "date"),
        Column("created_at", "timestamp", "local time (KST)"),
        Column("updated_at", "timestamp", "local time (KST)"),
        Column("completed_at", "timestamp", "local time (KST) of the last move to DONE; null unless DONE"),
        Column("version", "bigint"),
        Column("exported_at", "timestamp", "local time (KST)"),
    ),
)

EVENTS = ExportTable(
    "task_events",
    "Status changes from each task's history, in the partition of the local day they happened.",
    (
        Column("task_id", "string"),
        Column("seq", "bigint", "position in the task's history, from 0 (creation)"),
        Column("from_status", "string", "null for the creation"),
        Column("to_status", "string"),
        Column("changed_at", "timestamp", "local time (KST)"),
        Column("changed_by", "string", "Cognito sub"),
    ),
)

TABLES = (SNAPSHOTS, EVENTS)


def local_time(value: str | datetime) -> datetime:
    """A stored UTC time (ISO text, as taskapp writes it) as naive local time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(KST).replace(tzinfo=None)


def local_today(now: datetime | None = None) -> date:
    return local_time(now or datetime.now(UTC)).date()
