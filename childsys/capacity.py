"""Places per age class (0세반..5세반) and what uses them: free places, the check before an offer, and
the prompt to offer a freed place to the next child in rank.

Free places = places - enrolled - outstanding offers, per class. A class without a configured
number of places has no limit (the pages say it is not set). An offer takes a place by one
conditional UPDATE of the class's row that counts the free places as it runs (take_free_place), so
two staff members cannot both take the last place, on SQLite as on MySQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, union_all, update

from childsys.models import Application, ApplicationHistory, ClassCapacity, Enrollment, db, utcnow
from shared.platform.auth import Identity
from shared.platform.errors import ApiError, ValidationFailed
from shared.waitlist.calendar import OLDEST_CLASS
from shared.waitlist.ranking import rank_order
from shared.waitlist.rules import WAITING, Status, staff_daycare

CLASSES = tuple(range(OLDEST_CLASS + 1))
MAX_PLACES = 300
RELEASED_DAYS = 7  # how long an ended offer stays in the staff's prompt


class ClassFull(ApiError):
    """409: no free place in the child's class, and no override reason."""

    def __init__(self, places: ClassPlaces):
        super().__init__(409, "class_full", (
            f"The {places.age_class}세반 class is full ({places.places} places: {places.enrolled} enrolled, "
            f"{places.offered} offered). To offer a place anyway, give a reason for the override."))
        self.places = places


@dataclass(frozen=True)
class ClassPlaces:
    age_class: int
    places: int | None  # None: not set
    enrolled: int
    offered: int
    waiting: int

    @property
    def free(self) -> int | None:
        return None if self.places is None else self.places - self.enrolled - self.offered

    def to_dict(self) -> dict:
        return {"age_class": self.age_class, "places": self.places, "enrolled": self.enrolled,
                "offered": self.offered, "waiting": self.waiting, "free": self.free}


def _counts(stmt) -> dict[int, int]:
    return {klass: n for klass, n in db.session.execute(stmt) if klass is not None}


def application_counts(nursery_id: str) -> dict[tuple[int, int | None], int]:
    """(status code, age class) -> how many of a daycare's applications, in one grouped read off the class
    queue index: the staff page's tabs (per status) and its places (offered and waiting per class) from one
    pass over the daycare's rows instead of two."""
    return {(status, klass): n for status, klass, n in db.session.execute(
        select(Application.status, Application.age_class, func.count()).where(
            Application.nursery_id == nursery_id).group_by(Application.status, Application.age_class))}


def class_places(nursery_id: str, only: int | None = None, lock: bool = False,
                 counted: dict[tuple[int, int | None], int] | None = None) -> list[ClassPlaces]:
    """Every class of a daycare (or just `only`): places, enrolled, offered, waiting, free.

    `lock`: count with locking reads, which see the latest committed rows whatever the transaction
    read before (MySQL's REPEATABLE READ would otherwise count from an older snapshot) and keep
    them until the commit: what the check before an offer needs. `counted`: the daycare's
    application_counts, read already (the applications are then not counted again).
    """
    classes = CLASSES if only is None else (only,)

    def counted_with(stmt):
        return stmt.with_for_update(read=True) if lock else stmt

    places = {row.age_class: row.places for row in db.session.scalars(
        select(ClassCapacity).where(ClassCapacity.nursery_id == nursery_id, ClassCapacity.age_class.in_(classes)))}
    enrolled = _counts(counted_with(select(Enrollment.age_class, func.count()).where(
        Enrollment.nursery_id == nursery_id, Enrollment.age_class.in_(classes)).group_by(Enrollment.age_class)))
    if counted is None:
        counted = {(status, klass): n for status, klass, n in db.session.execute(counted_with(
            select(Application.status, Application.age_class, func.count()).where(
                Application.nursery_id == nursery_id, Application.status.in_([Status.ACCEPTED.code, WAITING.code]),
                Application.age_class.in_(classes)).group_by(Application.status, Application.age_class)))}
    offered = {klass: n for (status, klass), n in counted.items() if status == Status.ACCEPTED.code}
    waiting = {klass: n for (status, klass), n in counted.items() if status == WAITING.code}
    return [ClassPlaces(k, places.get(k), enrolled.get(k, 0), offered.get(k, 0), waiting.get(k, 0)) for k in classes]


def list_classes(identity: Identity, nursery_id: str | None) -> list[ClassPlaces]:
    return class_places(staff_daycare(identity, nursery_id))


def set_places(identity: Identity, nursery_id: str | None, places: dict[int, int | None]) -> list[ClassPlaces]:
    """Set (a number) or clear (None) the places of classes; staff of the daycare and admins."""
    nursery_id = staff_daycare(identity, nursery_id)
    problems = {f"places.{k}": f"must be a whole number from 0 to {MAX_PLACES}" for k, v in places.items()
                if k not in CLASSES or (v is not None and not (isinstance(v, int) and 0 <= v <= MAX_PLACES))}
    if problems:
        raise ValidationFailed(problems)
    for klass, value in places.items():
        row = db.session.get(ClassCapacity, (nursery_id, klass))
        if value is None:
            if row is not None:
                db.session.delete(row)
        elif row is None:
            db.session.add(ClassCapacity(nursery_id=nursery_id, age_class=klass, places=value,
                                         updated_by=identity.email, updated_at=utcnow()))
        elif row.places != value:
            row.places, row.updated_by, row.updated_at = value, identity.email, utcnow()
    db.session.commit()
    return class_places(nursery_id)


def lock_class(nursery_id: str, age_class: int | None) -> None:
    """Lock a class's places row until the transaction ends (MySQL; SQLite ignores it): offers into one
    class take it before the application's row, so they queue in one order and never deadlock."""
    if age_class is not None:
        db.session.execute(select(ClassCapacity.version).where(
            ClassCapacity.nursery_id == nursery_id, ClassCapacity.age_class == age_class).with_for_update())


def take_free_place(application: Application, override_reason: str | None) -> str | None:
    """Before an offer: take a free place in the child's class by one conditional change, or refuse.

    None when a place was taken (or the class has no limit set), the override reason when the class is
    full and overridden; else 409 ClassFull (the transaction is rolled back). The place is taken by
    `UPDATE class_capacities SET version = version + 1 WHERE … AND places > enrolled + offered`, counted in
    that statement: on SQLite the statement holds the database's write lock while it counts, on MySQL the
    class's row lock (lock_class) is held and the counts are locking reads, so two offers can never both
    take the last place, and free places never go below zero.
    """
    if application.age_class is None:
        return None
    nursery_id, klass = application.nursery_id, application.age_class
    enrolled = select(func.count()).select_from(Enrollment).where(
        Enrollment.nursery_id == nursery_id, Enrollment.age_class == klass).scalar_subquery()
    offered = select(func.count()).select_from(Application).where(
        Application.nursery_id == nursery_id, Application.age_class == klass,
        Application.status == Status.ACCEPTED.code).scalar_subquery()
    mine = (ClassCapacity.nursery_id == nursery_id, ClassCapacity.age_class == klass)
    [places] = class_places(nursery_id, only=klass, lock=True)  # latest committed counts (MySQL: locking reads)
    if places.places is None:
        return None  # no limit set for this class
    if places.free <= 0:
        return _full(places, override_reason)
    taken = db.session.execute(update(ClassCapacity).where(*mine, ClassCapacity.places > enrolled + offered)
                               .values(version=ClassCapacity.version + 1)
                               .execution_options(synchronize_session=False)).rowcount
    return None if taken else _full(class_places(nursery_id, only=klass)[0], override_reason)


def _full(places: ClassPlaces, override_reason: str | None) -> str:
    if override_reason:
        return override_reason
    db.session.rollback()
    raise ClassFull(places)


@dataclass(frozen=True)
class Prompt:
    """A class with a free place and children waiting: offer it to `application`, the first of them."""

    places: ClassPlaces
    application: Application


def offer_prompts(nursery_id: str, classes: list[ClassPlaces]) -> list[Prompt]:
    """For each class with places set, a free place and someone waiting: the highest ranked child waiting in it
    (one query: the first row of each such class's queue index)."""
    open_classes = {c.age_class: c for c in classes if c.free is not None and c.free > 0 and c.waiting}
    if not open_classes:
        return []
    firsts = [select(Application.id).where(
        Application.nursery_id == nursery_id, Application.status == WAITING.code, Application.age_class == klass)
        .order_by(*rank_order(Application)).limit(1).subquery().select() for klass in open_classes]
    ids = list(db.session.scalars(union_all(*firsts))) if len(firsts) > 1 else list(db.session.scalars(firsts[0]))
    applications = db.session.scalars(select(Application).where(Application.id.in_(ids))).all()
    return sorted((Prompt(open_classes[a.age_class], a) for a in applications), key=lambda p: p.places.age_class)


def released_offers(nursery_id: str, now: datetime | None = None) -> list[tuple[ApplicationHistory, Application]]:
    """Offers that ended without an enrolment in the last days (declined, expired, withdrawn), newest first."""
    since = (now or utcnow()) - timedelta(days=RELEASED_DAYS)
    rows = db.session.execute(
        select(ApplicationHistory, Application).join(Application).where(
            ApplicationHistory.nursery_id == nursery_id, ApplicationHistory.occurred_at >= since,
            ApplicationHistory.type.in_(["DECLINE", "EXPIRE", "WITHDRAW"]), Application.offered_at.is_not(None),
            ApplicationHistory.occurred_at >= Application.offered_at)
        .order_by(ApplicationHistory.occurred_at.desc()).limit(10))
    return [(history, application) for history, application in rows]
