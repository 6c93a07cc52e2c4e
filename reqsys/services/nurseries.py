"""The daycares parents choose from."""

from __future__ import annotations

from sqlalchemy import or_, select

from reqsys.models import Nursery, db
from shared.platform.errors import NotFound


def search_nurseries(query: str = "") -> list[Nursery]:
    """The daycares by name, those whose name, area or address contains `query` when one is given."""
    stmt = select(Nursery).order_by(Nursery.name)
    if query:
        like = f"%{query}%"
        stmt = stmt.where(or_(Nursery.name.like(like), Nursery.area.like(like), Nursery.address.like(like)))
    return list(db.session.scalars(stmt))


def all_nurseries() -> list[Nursery]:
    return list(db.session.scalars(select(Nursery).order_by(Nursery.nursery_id)))


def get_nursery(nursery_id: str, message: str = "There is no daycare with this ID") -> Nursery:
    nursery = db.session.get(Nursery, nursery_id)
    if nursery is None:
        raise NotFound(message)
    return nursery
