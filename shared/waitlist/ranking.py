"""The rank order of a daycare's queue, in SQL, for either app's application rows."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Index, and_, func, or_, select
from sqlalchemy.orm import aliased

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


def live_rank(session, model, application) -> int | None:
    """An application's rank at its daycare while it waits (None otherwise)."""
    if application.status != WAITING.code:
        return None
    return session.scalar(select(rank_of(model)).where(model.id == application.id))




def rank_order(model) -> tuple:
    """The waiting order at a daycare: any verified 1순위 item first, then score, then application time
    (the request id breaks exact ties the same way in both apps)."""
    return (model.priority_tier.asc(), model.score.desc(), model.applied_at.asc(), model.request_id.asc())


def ranks_of(session, model, nursery_id: str, ids: Iterable[int]) -> dict[int, int]:
    """The ranks of some waiting applications of one daycare, in one query: ROW_NUMBER() over the queue
    (read off its index, nothing leaves the database but the asked-for rows)."""
    ids = list(ids)
    if not ids:
        return {}
    queue = select(model.id, func.row_number().over(order_by=rank_order(model)).label("rank")).where(
        model.nursery_id == nursery_id, model.status == WAITING.code).subquery()
    return dict(session.execute(select(queue.c.id, queue.c.rank).where(queue.c.id.in_(ids))).all())


def rank_of(model):
    """A correlated subquery: 1 + the waiting applications ahead of this row at its daycare (for a
    handful of rows, e.g. a parent's own; it walks the queue index, not the table)."""
    ahead = aliased(model)
    same_tier, same_score = ahead.priority_tier == model.priority_tier, ahead.score == model.score
    return select(func.count() + 1).where(
        ahead.nursery_id == model.nursery_id, ahead.status == WAITING.code,
        or_(ahead.priority_tier < model.priority_tier,
            and_(same_tier, ahead.score > model.score),
            and_(same_tier, same_score, ahead.applied_at < model.applied_at),
            and_(same_tier, same_score, ahead.applied_at == model.applied_at, ahead.request_id < model.request_id)),
    ).scalar_subquery()


def queue_indexes(model) -> None:
    """The indexes rank queries walk, in rank order exactly (score descending), so the database reads a
    page of the queue, or counts the applications ahead of one, without sorting the queue: one daycare's
    applications of one status, and the same per age class."""
    order = (model.priority_tier, model.score.desc(), model.applied_at, model.request_id)
    Index("ix_applications_queue", model.nursery_id, model.status, *order)
    Index("ix_applications_class_queue", model.nursery_id, model.status, model.age_class, *order)
