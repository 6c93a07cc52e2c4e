"""Admin actions shared by the SQL apps: the seed's /admin/init, made safe to repeat."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from shared.platform.auth import login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.db import upgrade_schema

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/init", methods=["GET", "POST"])
@login_required("admins")
def init():
    """Bring the schema up to date (the original only worked once, on an empty database)."""
    form = EmptyForm()
    if form.validate_on_submit():
        revision = upgrade_schema(current_app)
        flash(_("The database schema is up to date (revision %(rev)s).", rev=revision), "success")
        return redirect(url_for("admin.init"))
    return render_template("admin/init.html", form=form)
