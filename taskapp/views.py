"""taskapp pages (session + CSRF) and the JSON API (bearer). Views stay thin: rules live in
taskapp.services; a page turns the service's field errors into messages next to its fields."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp

from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.errors import Conflict, ValidationFailed, error_response
from shared.platform.payloads import load_json
from taskapp import files, korean, services
from taskapp.services import Priority, Status, TaskCreate, TaskPatch

bp = Blueprint("main", __name__)
api = Blueprint("tasks_api", __name__)

STATUS_LABELS = {"TODO": _l("To do"), "IN_PROGRESS": _l("In progress"), "DONE": _l("Done")}
PRIORITY_LABELS = {"LOW": _l("Low"), "MEDIUM": _l("Medium"), "HIGH": _l("High")}
FIELD_MESSAGES = {
    "title": _l("Enter a title (up to 200 characters)."),
    "description": _l("The description can be up to 5000 characters."),
    "due_date": _l("Enter a date like 2026-12-31."),
    "labels": _l("Up to 10 labels, each up to 30 characters, separated by commas."),
    "assignee": _l("No one has signed up with this email address."),
    "status": _l("One of TODO, IN_PROGRESS, DONE (or 할 일, 진행 중, 완료)."),
    "priority": _l("One of LOW, MEDIUM, HIGH (or 낮음, 보통, 높음)."),
    "row": _l("This row has more values than there are columns."),
}
ASSIGNEE_FORMAT = _l("Enter it as an email address, like name@example.com.")
STALE = _l("Someone else changed this task. Here is the latest version; please make your change again.")
STALE_MOVE = _l("Someone else changed this task meanwhile, so it was not moved. Reload the page to see the latest "
                "board, then move it again.")
# the task table's sortable columns: column -> (sort when clicked first, the other direction)
SORT_COLUMNS = {"due": ("due", "due_desc"), "created": ("created", "created_asc")}


@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "priority_labels": PRIORITY_LABELS, "statuses": list(Status)}


# --- JSON ------------------------------------------------------------------------------------------


def page_args(default: int = services.DEFAULT_LIMIT) -> tuple[int, str | None]:
    """`limit` (1..MAX_LIMIT) and `cursor` of a paged list's query string; 400 naming them."""
    try:
        limit = int(request.args.get("limit", default))
    except ValueError:
        limit = 0
    if not 1 <= limit <= services.MAX_LIMIT:
        raise ValidationFailed({"limit": f"Between 1 and {services.MAX_LIMIT}"})
    return limit, request.args.get("cursor") or None


def _query_args() -> dict:
    args = request.args
    try:
        limit = int(args.get("limit", services.DEFAULT_LIMIT))
    except ValueError:
        raise ValidationFailed({"limit": f"Between 1 and {services.MAX_LIMIT}"}) from None
    return {
        "status": args.get("status") or None,
        "assignee": args.get("assignee") or None,
        "label": args.get("label") or None,
        "overdue": args.get("overdue", "").lower() in ("1", "true", "yes"),
        "sort": args.get("sort") or "due",
        "limit": limit,
        "cursor": args.get("cursor") or None,
    }


@api.get("/api/tasks")
@api_auth_required()
def api_list():
    tasks, cursor = services.list_tasks(g.identity, **_query_args())
    return jsonify(tasks=tasks, cursor=cursor)


@api.post("/api/tasks")
@api_auth_required()
def api_create():
    task = services.create_task(g.identity, load_json(TaskCreate))
    return jsonify(task), 201, {"Location": url_for("tasks_api.api_get", task_id=task["task_id"])}


@api.get("/api/tasks/<task_id>")
@api_auth_required()
def api_get(task_id: str):
    task = services.get_task(g.identity, task_id)
    return jsonify(task), 200, {"ETag": f'"{task["version"]}"'}


@api.patch("/api/tasks/<task_id>")
@api_auth_required()
def api_patch(task_id: str):
    changes = load_json(TaskPatch)
    version = changes.version
    if version is None and request.headers.get("If-Match"):
        try:
            version = int(request.headers["If-Match"].strip().removeprefix("W/").strip('"'))
        except ValueError:
            raise ValidationFailed({"If-Match": "The task's version number"}) from None
    task = services.update_task(g.identity, task_id, changes, version)
    return jsonify(task), 200, {"ETag": f'"{task["version"]}"'}


@api.delete("/api/tasks/<task_id>")
@api_auth_required()
def api_delete(task_id: str):
    files.delete_task(g.identity, task_id)
    return "", 204


# --- pages -----------------------------------------------------------------------------------------


class TaskForm(FlaskForm):
    title = StringField(_l("Title"), validators=[InputRequired(FIELD_MESSAGES["title"]),
                                                 Length(max=200, message=FIELD_MESSAGES["title"])])
    description = TextAreaField(_l("Description"),
                                validators=[Length(max=5000, message=FIELD_MESSAGES["description"])])
    status = SelectField(_l("Status"), choices=[(s.value, STATUS_LABELS[s.value]) for s in Status])
    priority = SelectField(_l("Priority"), choices=[(p.value, PRIORITY_LABELS[p.value]) for p in Priority],
                           default="MEDIUM")
    due_date = DateField(_l("Due date"), validators=[Optional()], format="%Y-%m-%d")
    labels = StringField(_l("Labels"), validators=[Optional()])
    assignee = EmailField(_l("Assignee's email"),
                          validators=[Optional(), Regexp(services.EMAIL.pattern, message=ASSIGNEE_FORMAT)])
    version = HiddenField()

    def data_for_service(self) -> dict:
        labels = [part.strip() for part in (self.labels.data or "").split(",") if part.strip()]
        return {
            "title": self.title.data or "",
            "description": self.description.data or "",
            "status": self.status.data,
            "priority": self.priority.data,
            "due_date": self.due_date.data,
            "labels": labels,
            "assignee": (self.assignee.data or "").strip() or None,
        }

    def show_errors(self, err: ValidationFailed) -> None:
        show_errors(self, err, FIELD_MESSAGES)


def checked(form: TaskForm, model: type):
    """Every field of a submitted task form checked in one pass (the form's rules, the service's
    rules, whether the assignee has an account); the parsed data, or None with each problem on its
    field. None as well when the form was not submitted."""
    if not form.is_submitted():
        return None
    form.validate()
    parsed = None
    try:
        parsed = services.parse(model, form.data_for_service())
    except ValidationFailed as err:
        form.show_errors(err)
    if parsed is not None and parsed.assignee and not form.assignee.errors:
        try:
            services.check_assignee(parsed.assignee)
        except ValidationFailed as err:
            form.show_errors(err)
    return None if form.errors else parsed


def particle(word, which: str) -> str:
    """`word` with its Korean particle when the page is in Korean (see taskapp.korean)."""
    return korean.in_locale(word, which, str(get_locale()))


def show_errors(form: FlaskForm, err: ValidationFailed, messages: dict, aliases: dict | None = None) -> None:
    """A service's field errors (ValidationFailed) next to the form's fields, in the page's words
    (`messages`, else the service's); `aliases` maps a service field to the form's name for it.
    An error no field shows is flashed."""
    for name, problem in err.fields.items():
        field = getattr(form, (aliases or {}).get(name, name), None)
        if field is not None:
            if not field.errors:  # one message per field: the form's own check spoke first
                field.errors = [*field.errors, messages.get(name, problem)]
        else:
            flash(problem, "error")


# served at "/" as the app's "home" endpoint (see create_app)
@login_required()
def index():
    return redirect(url_for("main.tasks"))


@bp.get("/tasks")
@login_required()
def tasks():
    args = _query_args()
    args["limit"] = min(max(args["limit"], 1), services.MAX_LIMIT)
    try:
        items, cursor = services.list_tasks(g.identity, **args)
    except ValidationFailed:
        flash(_("Some filters were not valid and were ignored."), "error")
        items, cursor = services.list_tasks(g.identity)
        args = {}
    keep = {k: v for k, v in args.items() if v not in (None, False, "") and k not in ("cursor", "limit")}
    next_url = url_for("main.tasks", cursor=cursor, **keep) if cursor else None
    sort = args.get("sort") or "due"
    sort_links = {}
    for column, (first, other) in SORT_COLUMNS.items():
        target = other if sort == first else first
        sort_links[column] = {"url": url_for("main.tasks", **{**keep, "sort": target}),
                              "active": sort in (first, other),
                              "ascending": sort in ("due", "created_asc")}
    first_page = url_for("main.tasks", **keep) if args.get("cursor") else None
    return render_template("taskapp/list.html", tasks=items, next_url=next_url, filters=args, today=_today(),
                           sort_links=sort_links, first_page=first_page)


@bp.get("/board")
@login_required()
def board():
    columns = {}
    for status in Status:
        columns[status.value], _cursor = services.list_tasks(g.identity, status=status.value,
                                                             limit=services.MAX_LIMIT)
    return render_template("taskapp/board.html", columns=columns, form=EmptyForm(), today=_today())


@bp.route("/tasks/new", methods=["GET", "POST"])
@login_required()
def create():
    form = TaskForm()
    data = checked(form, TaskCreate)
    if data is not None:
        try:
            task = services.create_task(g.identity, data)
        except ValidationFailed as err:
            form.show_errors(err)
        else:
            flash(_("Task created."), "success")
            return redirect(url_for("main.detail", task_id=task["task_id"]))
    return render_template("taskapp/form.html", form=form, task=None), 400 if form.errors else 200


@bp.get("/tasks/<task_id>")
@login_required()
def detail(task_id: str):
    return render_detail(task_id)


def render_detail(task_id: str, upload_error: str | None = None, status: int = 200):
    """The task page: the task, its files and a fresh upload form, from one Query of its partition."""
    page = files.task_page(g.identity, task_id, redirect=url_for("files.arrived", task_id=task_id, _external=True))
    return render_template("taskapp/detail.html", form=EmptyForm(), upload_error=upload_error, today=_today(),
                           **page), status


@bp.route("/tasks/<task_id>/edit", methods=["GET", "POST"])
@login_required()
def edit(task_id: str):
    task = services.get_task(g.identity, task_id)
    form = TaskForm()
    if request.method == "GET":
        form.process(data={**task, "labels": ", ".join(task.get("labels") or []),
                           "assignee": task.get("assignee_email") or "",
                           "due_date": _date(task.get("due_date")), "version": task["version"]})
    elif (changes := checked(form, TaskPatch)) is not None:
        try:
            version = int(form.version.data or 0)
            services.update_task(g.identity, task_id, changes, version)
        except ValidationFailed as err:
            form.show_errors(err)
        except (Conflict, ValueError):
            flash(STALE, "error")
            return redirect(url_for("main.edit", task_id=task_id))
        else:
            flash(_("Task saved."), "success")
            return redirect(url_for("main.detail", task_id=task_id))
    return render_template("taskapp/form.html", form=form, task=task), 400 if form.errors else 200


def _date(value: str | None):
    from datetime import date

    return date.fromisoformat(value) if value else None


def _today() -> str:
    """Today in the signed-in user's time zone (a task due before it is overdue)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from taskapp.profiles import DEFAULT_TIME_ZONE, page_profile

    zone = (page_profile(g.identity) or {}).get("time_zone") or DEFAULT_TIME_ZONE
    return datetime.now(ZoneInfo(zone)).date().isoformat()


@bp.post("/tasks/<task_id>/move")
@login_required()
def move(task_id: str):
    """A new status for a task, at the version the page showed: the board's drag and drop and its
    "move to" control (JSON when the request asks for it: board.js), the task page's buttons and
    the board's no-JavaScript form (a redirect back with a message)."""
    as_json = request.accept_mimetypes.best == "application/json"
    status = request.form.get("status", "")
    task = None
    try:
        version = int(request.form.get("version", ""))
        changes = services.parse(TaskPatch, {"status": status})
        task = services.update_task(g.identity, task_id, changes, version)
    except (Conflict, ValueError):
        if as_json:
            return error_response(409, "conflict", str(STALE_MOVE))
        flash(STALE_MOVE, "error")
    except ValidationFailed:
        if as_json:
            return error_response(400, "invalid", _("This status does not exist."), {"status": "unknown"})
        flash(_("This status does not exist."), "error")
    else:
        message = _("“%(title)s” moved to %(status)s.", title=task["title"],
                    status=particle(STATUS_LABELS[status], "로"))
        if as_json:
            return jsonify(task={k: task[k] for k in ("task_id", "status", "version")}, message=message)
        flash(message, "success")
    target = request.form.get("next")
    if target == "detail":
        return redirect(url_for("main.detail", task_id=task_id))
    return redirect(url_for("main.board", _anchor=f"task-{task_id}"))


@bp.route("/tasks/<task_id>/delete", methods=["GET", "POST"])
@login_required()
def delete(task_id: str):
    task = services.get_task(g.identity, task_id)
    form = EmptyForm()
    if form.validate_on_submit():
        files.delete_task(g.identity, task_id)
        flash(_("Task deleted."), "success")
        return redirect(url_for("main.tasks"))
    return render_template("taskapp/delete.html", task=task, form=form)
