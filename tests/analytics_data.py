"""A small task data set whose report figures are worked out by hand in tests/integration/test_analytics_reports.py.

Times are UTC as taskapp stores them; the reports count by local (KST, UTC+9) day. "Now" is
Wednesday 2025-03-12 12:00 KST.
"""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2025, 3, 12, 3, 0, tzinfo=UTC)
ALICE, BOB, CAROL = "sub-alice", "sub-bob", "sub-carol"
EMAILS = {ALICE: "alice@example.com", BOB: "bob@example.com", CAROL: "carol@example.com"}


def _at(day: int, hour: int = 1) -> str:
    return f"2025-03-{day:02d}T{hour:02d}:00:00.000000Z"


def task(task_id: str, owner: str, changes: list[tuple[str, str]], *, assignee: str | None = None,
         due: str | None = None, title: str | None = None) -> dict:
    """A task item as taskapp.services writes it; `changes` is [(at, to_status), ...] from creation."""
    history, previous = [], None
    for at, status in changes:
        history.append({"from": previous, "to": status, "at": at, "by": owner})
        previous = status
    return {
        "task_id": task_id, "owner_sub": owner, "owner_email": EMAILS[owner], "title": title or f"Task {task_id}",
        "description": "not exported", "status": previous, "priority": "MEDIUM", "due_date": due,
        "labels": ["analytics"], "assignee_sub": assignee, "assignee_email": EMAILS.get(assignee),
        "created_at": changes[0][0], "updated_at": changes[-1][0],
        "completed_at": changes[-1][0] if previous == "DONE" else None, "version": len(changes), "history": history,
    }


TASKS = [
    # lead 3 days, cycle 2 days; done, so not overdue though due before today
    task("t1", ALICE, [(_at(3), "TODO"), (_at(4), "IN_PROGRESS"), (_at(6), "DONE")], due="2025-03-05"),
    # assigned to bob: lead 7, cycle 5
    task("t2", ALICE, [(_at(3), "TODO"), (_at(5), "IN_PROGRESS"), (_at(10), "DONE")], assignee=BOB),
    # straight to DONE the same local day (10:00 -> 22:00 KST): lead 0.5, no cycle time
    task("t3", BOB, [(_at(4), "TODO"), (_at(4, 13), "DONE")]),
    # bob's task assigned to alice, overdue by 4 days
    task("t4", BOB, [(_at(5), "TODO")], assignee=ALICE, due="2025-03-08", title="세금 계산서 정리"),
    # started at 2025-03-06 16:00 UTC = 03-07 01:00 KST; overdue by 1 day
    task("t5", CAROL, [(_at(6), "TODO"), (_at(6, 16), "IN_PROGRESS")], due="2025-03-11"),
    task("t6", CAROL, [(_at(10), "TODO")], due="2025-03-20"),
    # done, reopened, done again: lead 9 days (created -> last DONE), cycle 6 (first start -> last DONE)
    task("t7", ALICE, [(_at(2), "TODO"), (_at(3), "DONE"), (_at(5), "IN_PROGRESS"), (_at(11), "DONE")]),
]


def put_tasks(table: str, tasks: list[dict]) -> None:
    """Store the tasks as taskapp does (same item keys and attribute types)."""
    from shared.platform.aws import client
    from taskapp.services import _with_keys
    from taskapp.store import dump

    for item in tasks:
        client("dynamodb").put_item(TableName=table, Item=dump(_with_keys(item)))
