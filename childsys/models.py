"""childsys tables. Migrations live in childsys/migrations (Flask-Migrate)."""

from __future__ import annotations

from datetime import datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.platform.outbox import OutboxMixin
from shared.waitlist.models import ApplicationMixin, CriterionMixin, utcnow
from shared.waitlist.ranking import queue_indexes


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Nursery(db.Model):
    __tablename__ = "nurseries"

    nursery_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200))
    area: Mapped[str] = mapped_column(String(50), index=True)

    def to_dict(self) -> dict[str, str]:
        return {"nursery_id": self.nursery_id, "name": self.name, "address": self.address, "area": self.area}


# the seed's JSON body: what every OFFER/REJECT/VERIFY event carries (plus "reason" for a rejection)
BODY_FIELDS = ("child_id", "child_name", "child_birthday", "user_id", "parent_name", "parent_tel",
               "parent_address", "parent_postcode", "parent_email", "nursery_id")


class Application(ApplicationMixin, db.Model):
    """An application received from reqsys; request_id = child_id + nursery_id.

    Ranked at its daycare by shared.waitlist.ranking.rank_order (the staff list's order).
    """

    __table_args__ = (
        Index("ix_applications_status", "status"),
        Index("ix_applications_created_at", "created_at"),
    )

    nursery_id: Mapped[str] = mapped_column(String(10), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(254), nullable=True)

    history: Mapped[list[ApplicationHistory]] = relationship(
        back_populates="application", order_by="ApplicationHistory.id", cascade="all, delete-orphan")
    criteria: Mapped[list[ApplicationCriterion]] = relationship(
        order_by="ApplicationCriterion.id", cascade="all, delete-orphan")

    def body(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in BODY_FIELDS} | {"desired_start": self.desired_start}


queue_indexes(Application)
Index("ix_applications_recent", Application.nursery_id, Application.updated_at)  # the other tabs: latest first


class ApplicationCriterion(CriterionMixin, db.Model):
    """A priority criterion the parent declared: the proof (synced from reqsys) and the staff's verification."""


class ApplicationHistory(db.Model):
    """The audit log: every state change and verification, once per event (event_id is the idempotency key),
    with who (a parent's or staff member's email, or "system"), the reason and any capacity override."""

    __tablename__ = "application_history"
    __table_args__ = (Index("ix_application_history_nursery_time", "nursery_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    nursery_id: Mapped[str] = mapped_column(String(10))
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(10))
    status: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str | None] = mapped_column(String(254), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    criterion: Mapped[str | None] = mapped_column(String(30), nullable=True)  # VERIFY/PROOF: which one
    override: Mapped[bool] = mapped_column(Boolean, default=False)  # an offer into a full class

    application: Mapped[Application] = relationship(back_populates="history")


class ClassCapacity(db.Model):
    """Places per age class (0세반..5세반) at a daycare. A class without a row has no limit set."""

    __tablename__ = "class_capacities"

    nursery_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    age_class: Mapped[int] = mapped_column(Integer, primary_key=True)
    places: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Enrollment(db.Model):
    """A child enrolled by a confirmed offer; removed when the parent cancels."""

    __tablename__ = "enrollments"
    __table_args__ = (Index("ix_enrollments_class", "nursery_id", "age_class"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(30), unique=True)
    nursery_id: Mapped[str] = mapped_column(String(10), index=True)
    age_class: Mapped[int | None] = mapped_column(Integer, nullable=True)
    desired_start: Mapped[str | None] = mapped_column(String(7), nullable=True)
    child_id: Mapped[str] = mapped_column(String(20))
    child_name: Mapped[str] = mapped_column(String(50))
    child_birthday: Mapped[str] = mapped_column(String(8))
    parent_name: Mapped[str] = mapped_column(String(50))
    parent_tel: Mapped[str] = mapped_column(String(20))
    parent_email: Mapped[str] = mapped_column(String(254))
    enrolled_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OutboxEvent(OutboxMixin, db.Model):
    """Staff decisions waiting for (or done with) the relay to the integrated-events queue."""
