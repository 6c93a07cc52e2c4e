"""reqsys pages and JSON routes (the application flows arrive with the waitlist issue)."""

from flask import Blueprint, jsonify, render_template, request

from reqsys.models import Nursery, db

bp = Blueprint("main", __name__)


# served at "/" as the app's "home" endpoint (see create_app)
def index():
    return render_template("reqsys/index.html")


@bp.get("/nurseries")
def nurseries():
    query = request.args.get("q", "").strip()[:50]
    stmt = db.select(Nursery).order_by(Nursery.name)
    if query:
        like = f"%{query}%"
        stmt = stmt.where(db.or_(Nursery.name.like(like), Nursery.area.like(like), Nursery.address.like(like)))
    return render_template("reqsys/nurseries.html", nurseries=db.session.scalars(stmt).all(), query=query)


@bp.get("/api/nurseries")
def api_nurseries():
    rows = db.session.scalars(db.select(Nursery).order_by(Nursery.nursery_id)).all()
    return jsonify(nurseries=[row.to_dict() for row in rows])
