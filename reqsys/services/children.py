"""A parent's children, and how many applications each child has open (the limit)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reqsys.models import Application, Child, db
from reqsys.services.schemas import ChildBody
from shared.platform.auth import Identity
from shared.platform.errors import NotFound, ValidationFailed
from shared.platform.payloads import validate
from shared.waitlist.rules import ACTIVE, Status, application_limit


def list_children(identity: Identity) -> list[Child]:
    stmt = select(Child).where(Child.parent_sub == identity.sub).order_by(Child.birthday, Child.id)
    return list(db.session.scalars(stmt))


def register_child(identity: Identity, data: ChildBody | dict) -> Child:
    body = validate(ChildBody, data)
    if find_child(identity.sub, body.child_id) is not None:
        raise ValidationFailed({"child_id": "is already registered"})
    child = Child(parent_sub=identity.sub, child_id=body.child_id, name=body.name, birthday=body.birthday)
    db.session.add(child)
    try:
        db.session.commit()
    except IntegrityError:  # the same child registered twice at once
        db.session.rollback()
        raise ValidationFailed({"child_id": "is already registered"}) from None
    return child


def get_child(identity: Identity, child_pk: int) -> Child:
    child = db.session.get(Child, child_pk)
    if child is None or child.parent_sub != identity.sub:
        raise NotFound("No such child")
    return child


def find_child(parent_sub: str, child_id: str) -> Child | None:
    return db.session.scalars(
        select(Child).where(Child.parent_sub == parent_sub, Child.child_id == child_id)).first()


COUNTED = [s.code for s in (*ACTIVE, Status.ENROLLED)]  # what a child's limit looks at


def child_usage(codes: list[int]) -> tuple[int, int]:
    """(active applications, the limit) of a child whose counted applications have these status codes."""
    statuses = [Status(code) for code in codes]
    return sum(s in ACTIVE for s in statuses), application_limit(Status.ENROLLED in statuses)


def of_child(parent_sub: str, *child_ids: str) -> tuple:
    """Conditions selecting a child's applications: those its parent made. A child is known by the id
    its parent gave (children are registered per parent, and nothing verifies an id across accounts),
    so another account using the same id never counts against this child's limit, nor is withdrawn
    when this child enrols."""
    return Application.parent_sub == parent_sub, Application.child_id.in_(child_ids)


def active_counts(identity: Identity, child_ids: list[str]) -> dict[str, tuple[int, int]]:
    """child_id -> (active applications, the child's limit), for the apply form."""
    found: dict[str, list[int]] = {child_id: [] for child_id in child_ids}
    for child_id, code in db.session.execute(select(Application.child_id, Application.status).where(
            *of_child(identity.sub, *child_ids), Application.status.in_(COUNTED))):
        found[child_id].append(code)
    return {child_id: child_usage(codes) for child_id, codes in found.items()}
