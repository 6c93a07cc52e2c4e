"""childsys pages (the application lists and decisions arrive with the waitlist issue)."""

from flask import Blueprint, g, render_template

from childsys.models import Nursery, db
from shared.auth import login_required

bp = Blueprint("main", __name__)


# served at "/" as the app's "home" endpoint (see create_app)
@login_required()
def index():
    nursery = db.session.get(Nursery, g.identity.daycare_id) if g.identity.daycare_id else None
    return render_template("childsys/index.html", nursery=nursery)
