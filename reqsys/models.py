"""reqsys tables. Migrations live in reqsys/migrations (Flask-Migrate)."""

from __future__ import annotations

from datetime import date, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
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


class Child(db.Model):
    """A parent's child, registered once and chosen when applying."""

    __tablename__ = "children"
    __table_args__ = (UniqueConstraint("parent_sub", "child_id", name="uq_children_parent_child"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_sub: Mapped[str] = mapped_column(String(64), index=True)  # the Cognito sub of the parent
    child_id: Mapped[str] = mapped_column(String(20))  # the seed's id string
    name: Mapped[str] = mapped_column(String(50))
    birthday: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # the one application the child is enrolled by: a confirmation claims it with a conditional update
    # (WHERE it is still what was read), so a child is enrolled at most once, whatever races
    enrolled_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ContactEmail(db.Model):
    """An address other than the account's own that a parent gave for notices: it gets them only once
    someone confirmed it through the link (or code) sent to it."""

    __tablename__ = "contact_emails"
    __table_args__ = (UniqueConstraint("parent_sub", "email", name="uq_contact_emails_parent_email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_sub: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(254))  # lower case
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the code sent
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


# the seed's JSON body, in its order, and the portal's additions: what every event of reqsys carries
BODY_FIELDS = ("child_id", "child_name", "child_birthday", "user_id", "parent_name", "parent_tel",
               "parent_address", "parent_postcode", "parent_email", "nursery_id", "desired_start")


class Application(ApplicationMixin, db.Model):
    """One child of one account, applying to one daycare (unique per account, child id and daycare);
    request_id = shared.waitlist.body.request_id_for(...) (rows from before keep the seed's child_id + nursery_id).

    Ranked at its daycare by shared.waitlist.ranking.rank_order; an offer (ACCEPTED) runs until
    offer_expires_at, after which the schedule in reqsys.offers expires it.
    """

    __table_args__ = (
        Index("ix_applications_child_status", "child_id", "status"),  # a child's limit
        UniqueConstraint("parent_sub", "child_id", "nursery_id", name="uq_applications_account_child_nursery"),
        Index("ix_applications_offers", "status", "offer_expires_at"),  # the deadline schedule
    )

    parent_sub: Mapped[str] = mapped_column(String(64), index=True)
    nursery_id: Mapped[str] = mapped_column(String(10), ForeignKey("nurseries.nursery_id"), index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # the offer's reminder went out

    nursery: Mapped[Nursery] = relationship(lazy="joined")
    history: Mapped[list[ApplicationHistory]] = relationship(
        back_populates="application", order_by="ApplicationHistory.id", cascade="all, delete-orphan")
    criteria: Mapped[list[ApplicationCriterion]] = relationship(
        order_by="ApplicationCriterion.id", cascade="all, delete-orphan")

    @property
    def nursery_name(self) -> str | None:
        return self.nursery.name if self.nursery else None

    def body(self) -> dict:
        """The seed's JSON body of this application, with its start month, criteria and daycare name."""
        return {**{name: getattr(self, name) for name in BODY_FIELDS}, "request_id": self.request_id,
                "notify_email": self.notify_email or "",
                "criteria": [c.code for c in self.criteria],
                "nursery_name": self.nursery.name if self.nursery else self.nursery_id}


queue_indexes(Application)


class ApplicationCriterion(CriterionMixin, db.Model):
    """A priority criterion the parent declared, its proof, and the daycare's verification (synced)."""


class ApplicationHistory(db.Model):
    """Every state change of an application, once per event (event_id is the idempotency key)."""

    __tablename__ = "application_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(10))  # shared.platform.events.EventType
    status: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    criterion: Mapped[str | None] = mapped_column(String(30), nullable=True)  # VERIFY/PROOF: which one

    application: Mapped[Application] = relationship(back_populates="history")


class OutboxEvent(OutboxMixin, db.Model):
    """Events waiting for (or done with) the relay to the integrated-events queue."""
