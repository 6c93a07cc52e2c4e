"""The rank order of a daycare's queue, in SQL, for either app's application rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Index, and_, bindparam, func, or_, select

from shared.waitlist.rules import WAITING


def locked(session, model, request_id: str):
    """The application, row-locked until the transaction ends (MySQL; SQLite serialises writers), and
    read afresh: a page that loaded it earlier in this request must not decide on what it saw then.
    What it is then changed to is written only if its version is still the one read (the models'
    version_id_col), where a database ignores the lock (SQLite) as where it keeps it."""
    return locked_where(session, model, model.request_id == request_id)


def locked_where(session, model, *conditions):
    """The one application matching `conditions` (a unique key), locked and read afresh as by `locked`."""
    return session.scalars(select(model).where(*conditions).with_for_update()
                           .execution_options(populate_existing=True)).first()


def rank_order(model) -> tuple:
    """The waiting order at a daycare: any verified 1순위 item first, then score, then application time
    (the request id breaks exact ties the same way in both apps)."""
    return (model.priority_tier.asc(), model.score.desc(), model.applied_at.asc(), model.request_id.asc())


@dataclass(frozen=True)
class Place:
    """Where a waiting application stands: `rank` of the `waiting` applications at its daycare."""

    rank: int
    waiting: int


def queue_places(session, model, applications: Iterable) -> dict[int, Place]:
    """The places of the waiting ones among `applications` (any daycares; objects or rows with id, status
    and nursery_id), in one query: RANK() over each daycare's queue in rank order, with the queue's length,
    read off the queue index; only the asked-for rows leave the database. The one definition of a rank,
    for every page, JSON route and email."""
    waiting = [a for a in applications if a.status == WAITING.code]
    if not waiting:
        return {}
    rows = session.execute(_places_query(model), {"daycares": list({a.nursery_id for a in waiting}),
                                                  "ids": [a.id for a in waiting]})
    return {id_: Place(rank, count) for id_, rank, count in rows}


@cache
def _places_query(model):
    """queue_places' statement on the model's table, built once (a Core statement: its rows are plain)."""
    table = model.__table__.c
    by_daycare = {"partition_by": table.nursery_id}
    queue = select(table.id, func.rank().over(**by_daycare, order_by=rank_order(table)).label("rank"),
                   func.count().over(**by_daycare).label("waiting")).where(
        table.nursery_id.in_(bindparam("daycares", expanding=True)), table.status == WAITING.code).subquery()
    return select(queue.c.id, queue.c.rank, queue.c.waiting).where(queue.c.id.in_(bindparam("ids", expanding=True)))


def arrival_counts(model, nursery_id: str, tier: int, score: int, applied_at, request_id: str) -> tuple:
    """Two scalar subqueries for another query's columns: how many waiting applications at the daycare come
    before one with these ordering fields in rank order, and how many wait there. For an application not yet
    waiting (about to be written), its place once written is Place(ahead + 1, waiting + 1): the rank of
    queue_places (request ids are unique, so nothing ties), read before the write instead of after it."""
    before = or_(model.priority_tier < tier, and_(model.priority_tier == tier, or_(
        model.score > score, and_(model.score == score, or_(
            model.applied_at < applied_at, and_(model.applied_at == applied_at, model.request_id < request_id))))))
    queue = (model.nursery_id == nursery_id, model.status == WAITING.code)
    return (select(func.count()).select_from(model).where(*queue, before).scalar_subquery(),
            select(func.count()).select_from(model).where(*queue).scalar_subquery())


def live_rank(session, model, application) -> int | None:
    """An application's rank at its daycare while it waits (None otherwise)."""
    place = queue_places(session, model, [application]).get(application.id)
    return place.rank if place else None


def queue_indexes(model) -> None:
    """The indexes rank queries walk, in rank order exactly (score descending), so the database reads a
    page of the queue, or counts the applications ahead of one, without sorting the queue: one daycare's
    applications of one status, and the same per age class."""
    order = (model.priority_tier, model.score.desc(), model.applied_at, model.request_id)
    Index("ix_applications_queue", model.nursery_id, model.status, *order)
    Index("ix_applications_class_queue", model.nursery_id, model.status, model.age_class, *order)
