"""The audit log: who did what to which application, and when (every state change and verification,
whether made here by staff, by the parent in reqsys, or by the system), with the reason or override.

It reads childsys's application history, which every event and staff decision writes once (by
event id). Staff see their daycare's entries; admins see every daycare's, or one's.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from childsys.models import Application, ApplicationHistory, db
from shared.platform.auth import Identity
from shared.platform.clock import iso
from shared.platform.errors import ValidationFailed
from shared.platform.events import EventType
from shared.waitlist.rules import staff_daycare

PAGE_SIZE = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_audit(identity: Identity, nursery_id: str | None = None, event_type: str | None = None,
               query: str | None = None, actor: str | None = None, page: int = 1,
               ) -> tuple[list[tuple[ApplicationHistory, Application]], int]:
    """A page of audit entries, newest first, and how many match.

    Filters: the daycare (admins may leave it out), the event type, a child's name or request id
    (`query`), who acted (`actor`, part of an email or "system").
    """
    if not (identity.is_admin and not nursery_id):
        nursery_id = staff_daycare(identity, nursery_id)
    where = []
    if nursery_id:
        where.append(ApplicationHistory.nursery_id == nursery_id)
    if event_type:
        if event_type not in EventType.__members__:
            raise ValidationFailed({"type": "must be one of " + ", ".join(EventType.__members__)})
        where.append(ApplicationHistory.type == event_type)
    if query:
        where.append(or_(Application.child_name.like(_like(query[:50]), escape="\\"),
                         Application.request_id.like(_like(query[:30]), escape="\\")))
    if actor:
        where.append(ApplicationHistory.actor.like(_like(actor[:254]), escape="\\"))
    base = select(ApplicationHistory, Application).join(Application).where(*where)
    total = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = db.session.execute(base.order_by(ApplicationHistory.occurred_at.desc(), ApplicationHistory.id.desc())
                              .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE))
    return [(entry, application) for entry, application in rows], total


def entry_dict(entry: ApplicationHistory, application: Application) -> dict:
    return {"at": iso(entry.occurred_at), "nursery_id": entry.nursery_id, "request_id": application.request_id,
            "child_name": application.child_name, "type": entry.type, "actor": entry.actor, "note": entry.note,
            "criterion": entry.criterion, "override": entry.override, "version": entry.version}
