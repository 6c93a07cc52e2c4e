"""The lists of applications: the parent's own, and everyone's a page at a time for admins, newest first,
each with its place in its daycare's queue while it waits.

Read as plain rows of the columns the list pages and the JSON show (no ORM objects: the lists are the
busiest reads and the ORM's loading cost more than the database): the applications with their daycare's
name, then their criteria and their history in one query each."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import cache

from sqlalchemy import and_, bindparam, or_, select

from reqsys.models import Application, ApplicationCriterion, ApplicationHistory, Nursery, db
from shared.platform.auth import Identity
from shared.platform.errors import Forbidden, ValidationFailed
from shared.waitlist.ranking import Place, queue_places
from shared.waitlist.rules import Status

ADMIN_PAGE = 50

_application = Application.__table__.c
_NEWEST_FIRST = (_application.created_at.desc(), _application.id.desc())


@cache
def _statements() -> tuple:
    """The lists' Core statements on the tables (no ORM entities: the rows come back as the driver gives them),
    built on first use, not at import (cold start), and once: (the shown columns, the parent's list with its
    details, the details of a page of ids)."""
    criterion, history, nursery = ApplicationCriterion.__table__.c, ApplicationHistory.__table__.c, Nursery.__table__.c
    shown = select(
        _application.id, _application.request_id, _application.child_id, _application.child_name,
        _application.child_birthday, _application.nursery_id, nursery.name.label("nursery_name"),
        _application.status, _application.version, _application.reason, _application.notify_email,
        _application.parent_email, _application.desired_start, _application.age_class, _application.applied_at,
        _application.score, _application.priority_tier, _application.offered_at, _application.offer_expires_at,
        _application.created_at, _application.updated_at,
    ).outerjoin(Nursery.__table__, nursery.nursery_id == _application.nursery_id)

    def details(which) -> tuple:
        """The criteria and the history (each in id order) of the applications `which` names."""
        return (select(criterion.application_id, criterion.code, criterion.status, criterion.reason,
                       criterion.proof_key, criterion.proof_name, criterion.proof_uploaded_at
                       ).where(criterion.application_id.in_(which)).order_by(criterion.id),
                select(history.application_id, history.type, history.status, history.version,
                       history.occurred_at, history.note, history.criterion
                       ).where(history.application_id.in_(which)).order_by(history.id))

    own = _application.parent_sub == bindparam("sub")
    return (shown, (shown.where(own).order_by(*_NEWEST_FIRST), details(select(_application.id).where(own))),
            details(bindparam("ids", expanding=True)))


class Listed:
    """An application as the lists show it: the shown columns as attributes (as an Application has them),
    its daycare's name, and its criteria and history rows (as ApplicationCriterion and ApplicationHistory)."""

    def __init__(self, columns: dict, criteria: list, history: list):
        self.__dict__.update(columns)
        self.criteria, self.history = criteria, history

    @property
    def status_enum(self) -> Status:
        return Status(self.status)


def list_applications(identity: Identity) -> list[tuple[Listed, Place | None]]:
    """The parent's applications, newest first, each with its place in its daycare's queue while it waits."""
    return _with_places(_listed(*_statements()[1], sub=identity.sub))


def list_all_applications(identity: Identity, cursor: str | None = None, limit: int = ADMIN_PAGE
                          ) -> tuple[list[tuple[Listed, Place | None]], str | None]:
    """For admins: a page of everyone's applications, newest first, and the cursor of the next page (None
    at the end). The cursor is the last row's (created_at, id): pages never repeat or skip a row."""
    if not identity.is_admin:
        raise Forbidden("Only admins see every application")
    stmt, _, page_details = _statements()
    if cursor:
        created, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(_application.created_at < created,
                              and_(_application.created_at == created, _application.id < last_id)))
    listed = _listed(stmt.order_by(*_NEWEST_FIRST).limit(limit + 1), page_details)
    more = len(listed) > limit
    listed = listed[:limit]
    next_cursor = encode_cursor(listed[-1].created_at, listed[-1].id) if more else None
    return _with_places(listed), next_cursor


def _listed(stmt, details: tuple, **params) -> list[Listed]:
    """The applications `stmt` reads, as Listed, with their criteria and history read by `details` (given
    `params`, and the applications' ids)."""
    result = db.session.execute(stmt, params)
    names = list(result.keys())
    rows = [dict(zip(names, row, strict=True)) for row in result]
    if not rows:
        return []
    params["ids"] = [row["id"] for row in rows]
    criteria, history = defaultdict(list), defaultdict(list)
    for criterion in db.session.execute(details[0], params):
        criteria[criterion.application_id].append(criterion)
    for event in db.session.execute(details[1], params):
        history[event.application_id].append(event)
    return [Listed(row, criteria.get(row["id"], []), history.get(row["id"], [])) for row in rows]


def _with_places(listed: list[Listed]) -> list[tuple[Listed, Place | None]]:
    places = queue_places(db.session, Application, listed)
    return [(application, places.get(application.id)) for application in listed]


def encode_cursor(created_at: datetime, row_id: int) -> str:
    return f"{created_at.isoformat()}_{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """400 naming `cursor` unless it is one this service wrote."""
    try:
        created, row_id = cursor.rsplit("_", 1)
        return datetime.fromisoformat(created), int(row_id)
    except ValueError:
        raise ValidationFailed({"cursor": "is not a cursor this list gave"}) from None
