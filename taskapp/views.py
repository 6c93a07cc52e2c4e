"""taskapp pages (tasks arrive with the task-management issue)."""

from flask import Blueprint, render_template

from shared.auth import login_required

bp = Blueprint("main", __name__)


# served at "/" as the app's "home" endpoint (see create_app)
@login_required()
def index():
    return render_template("taskapp/index.html")
