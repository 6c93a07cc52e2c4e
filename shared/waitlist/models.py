"""The columns both waitlist databases share, as SQLAlchemy mixins (each app keeps its own tables)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.waitlist.criteria import Criterion, CriterionStatus
from shared.waitlist.rules import Status

# MySQL's DATETIME drops fractions of a second: ties by application time need microseconds
PreciseDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow() -> datetime:
    """The databases' time: naive UTC (MySQL DATETIME has no zone); the pages show it in KST."""
    return datetime.now(UTC).replace(tzinfo=None)


class ApplicationMixin:
    """The columns both apps' `applications` rows share: the seed's body, the status and its version, and
    what ranking, classes and offers need. Each app adds its own `nursery_id` (reqsys: a foreign key to
    its daycares) and its own columns and indexes."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(30), unique=True)
    child_id: Mapped[str] = mapped_column(String(20))
    child_name: Mapped[str] = mapped_column(String(50))
    child_birthday: Mapped[str] = mapped_column(String(8))  # YYYYMMDD, as in the seed
    user_id: Mapped[str] = mapped_column(String(128))
    parent_name: Mapped[str] = mapped_column(String(50))
    parent_tel: Mapped[str] = mapped_column(String(20))
    parent_address: Mapped[str] = mapped_column(String(200))
    parent_postcode: Mapped[str] = mapped_column(String(5))
    parent_email: Mapped[str] = mapped_column(String(254))
    status: Mapped[int] = mapped_column(Integer)  # shared.waitlist.rules.Status code
    version: Mapped[int] = mapped_column(Integer, default=0)  # set by whoever creates the row, from its event
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)  # why it was rejected or withdrawn
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    desired_start: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    age_class: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 0..5 (세반) at desired_start
    applied_at: Mapped[datetime] = mapped_column(PreciseDateTime)  # the latest REQUEST: ties go by it
    priority_tier: Mapped[int] = mapped_column(Integer, default=2)
    score: Mapped[int] = mapped_column(Integer, default=0)
    offered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    def criterion(self, code: str):
        return next((c for c in self.criteria if c.code == code), None)


class CriterionMixin:
    """A priority criterion declared on an application: its proof and the daycare's verification."""

    __tablename__ = "application_criteria"
    __table_args__ = (UniqueConstraint("application_id", "code", name="uq_application_criteria_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10), default=CriterionStatus.PENDING.value)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)  # why the daycare rejected it
    proof_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    proof_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    proof_uploaded_at: Mapped[datetime | None] = mapped_column(PreciseDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(PreciseDateTime, nullable=True)

    @declared_attr
    def application_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy's declared_attr
        return mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)

    def payload(self, criteria: dict[str, Criterion]) -> dict:
        """What a VERIFY or PROOF event says about this criterion (labels for the email)."""
        known = criteria.get(self.code)
        return {"code": self.code, "status": self.status, "reason": self.reason, "proof_key": self.proof_key,
                "proof_name": self.proof_name, "label_ko": known.label.ko if known else self.code,
                "label_en": known.label.en if known else self.code}
