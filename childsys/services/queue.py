"""Reading a daycare's applications: the ranked list, counts by status, one application, the enrolled."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import load_only, selectinload

from childsys.models import (
    Application,
    ApplicationCriterion,
    Enrollment,
    Nursery,
    db,
)
from shared.platform.auth import Identity
from shared.platform.errors import NotFound, ValidationFailed
from shared.waitlist.ranking import live_rank, queue_places, rank_order
from shared.waitlist.rules import (
    WAITING,
    Status,
    require_daycare,
    staff_daycare,
)

PAGE_SIZE = 25
# what the staff page shows of a row (and its offer dialog), and what ranking a row needs
PAGE_COLUMNS = (Application.request_id, Application.nursery_id, Application.child_name, Application.child_birthday,
                Application.parent_name, Application.status, Application.age_class, Application.score,
                Application.priority_tier, Application.applied_at, Application.offer_expires_at)


def get_nursery(nursery_id: str) -> Nursery | None:
    return db.session.get(Nursery, nursery_id)


def all_nurseries() -> list[Nursery]:
    """Every daycare by name (an admin picks the one to look at)."""
    return list(db.session.scalars(select(Nursery).order_by(Nursery.name)))


def nursery_name(nursery_id: str) -> str:
    nursery = db.session.get(Nursery, nursery_id)
    return nursery.name if nursery else nursery_id


def parse_status(status: str | None) -> Status | None:
    if not status:
        return None
    if status not in Status.__members__:
        raise ValidationFailed({"status": "must be one of " + ", ".join(Status.__members__)})
    return Status[status]


def list_applications(identity: Identity, nursery_id: str | None, status: str | None = None,
                      newest_first: bool = False, page: int = 1, klass: int | None = None,
                      total: int | None = None, for_page: bool = False
                      ) -> tuple[list[tuple[Application, int | None]], int]:
    """A page of one daycare's applications with each waiting one's rank, and the total.

    Waiting applications come in rank order: the database reads the page off the queue index,
    so a row's rank is its place in that order. Other statuses come most recently changed first.
    `klass` keeps one age class (ranks stay the daycare's). `total`: the caller has counted already.
    `for_page`: only what the staff page shows (PAGE_COLUMNS, the criteria's codes and statuses); else whole rows
    with their criteria and history, as the JSON has them.
    """
    nursery_id = staff_daycare(identity, nursery_id)
    wanted = parse_status(status)
    where = [Application.nursery_id == nursery_id]
    if wanted:
        where.append(Application.status == wanted.code)
    if klass is not None:
        where.append(Application.age_class == klass)
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(Application).where(*where)) or 0
    offset = max(page - 1, 0) * PAGE_SIZE
    queue = wanted is WAITING and not newest_first
    if newest_first:
        order = (Application.created_at.desc(), Application.id.desc())
    else:
        order = rank_order(Application) if queue else (Application.updated_at.desc(), Application.id.desc())
    if for_page:
        loads = (load_only(*PAGE_COLUMNS),
                 selectinload(Application.criteria).load_only(ApplicationCriterion.code, ApplicationCriterion.status))
    else:
        loads = (selectinload(Application.criteria), selectinload(Application.history))
    rows = list(db.session.scalars(select(Application).where(*where).order_by(*order).options(*loads)
                                   .limit(PAGE_SIZE).offset(offset)))
    if queue and klass is None:  # the page is a slice of the whole queue: its place is its rank
        return [(application, offset + i + 1) for i, application in enumerate(rows)], total
    places = queue_places(db.session, Application, rows)
    return [(a, places[a.id].rank if a.id in places else None) for a in rows], total


def status_counts(counted: dict[tuple[int, int | None], int]) -> dict[str, int]:
    """Status name -> how many of a daycare's applications, from its capacity.application_counts
    ((status code, age class) -> how many), so the page's tabs and places come from one read."""
    counts = {status.name: 0 for status in Status}
    for (code, _), n in counted.items():
        counts[Status(code).name] += n
    return counts


def get_application(identity: Identity, request_id: str) -> Application:
    application = db.session.scalars(select(Application).where(Application.request_id == request_id)).first()
    if application is None:
        raise NotFound("No such application")
    require_daycare(identity, application.nursery_id)
    return application


def rank_in_queue(application: Application) -> int | None:
    return live_rank(db.session, Application, application)


def list_enrollments(identity: Identity, nursery_id: str | None = None) -> list[Enrollment]:
    nursery_id = staff_daycare(identity, nursery_id)
    return list(db.session.scalars(select(Enrollment).where(Enrollment.nursery_id == nursery_id)
                                   .order_by(Enrollment.age_class, Enrollment.enrolled_at)))
