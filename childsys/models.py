"""childsys tables. Migrations live in childsys/migrations (Flask-Migrate)."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
