"""taskapp pages: session + CSRF, errors next to fields, the board's move buttons, delete."""

from __future__ import annotations

import re

from tests.conftest import csrf_token_in


def test_create_move_on_board_and_delete(client_for, make_user, sign_in, submit):
    user = make_user()
    web = client_for("taskapp")
    assert web.get("/tasks").status_code == 302  # sign-in first
    sign_in(web, user.email)

    # no CSRF token: refused
    assert web.post("/tasks/new", data={"title": "x"}).status_code == 400
    # errors next to the fields
    bad = submit(web, "/tasks/new", {"title": "", "status": "TODO", "priority": "LOW", "labels": ""})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert 'id="title-error"' in html
    form = {"title": "ok", "status": "TODO", "priority": "LOW"}
    bad = submit(web, "/tasks/new", {**form, "labels": "a,b,c,d,e,f,g,h,i,j,k"})
    assert bad.status_code == 400 and 'id="labels-error"' in bad.get_data(as_text=True)
    bad = submit(web, "/tasks/new", {**form, "assignee": "ghost@example.com"})
    assert bad.status_code == 400 and 'id="assignee-error"' in bad.get_data(as_text=True)

    created = submit(web, "/tasks/new", {"title": "Buy crayons", "status": "TODO", "priority": "HIGH",
                                         "due_date": "2030-03-01", "labels": "shop, kids"})
    assert created.status_code == 302, created.get_data(as_text=True)
    detail_url = created.headers["Location"]
    task_id = detail_url.rstrip("/").rsplit("/", 1)[-1]
    assert "Buy crayons" in web.get(detail_url).get_data(as_text=True)

    board = web.get("/board").get_data(as_text=True)
    assert "Buy crayons" in board
    moved = web.post(f"/tasks/{task_id}/move", data={"csrf_token": csrf_token_in(board), "status": "IN_PROGRESS",
                                                    "version": "1", "next": "board"})
    assert moved.status_code == 302 and moved.headers["Location"].endswith("/board")
    # a second click from the same (now stale) board page changes nothing
    stale = web.post(f"/tasks/{task_id}/move", data={"csrf_token": csrf_token_in(board), "status": "DONE",
                                                    "version": "1"})
    assert stale.status_code == 302
    page = web.get(detail_url).get_data(as_text=True)
    assert page.count("<li>") >= 2 and "→" in page
    board = web.get("/board").get_data(as_text=True)
    columns = re.findall(r'<section class="card column".*?</section>', board, re.S)
    assert "Buy crayons" not in columns[0] and "Buy crayons" in columns[1] and "Buy crayons" not in columns[2]

    assert "Buy crayons" in web.get("/tasks?status=IN_PROGRESS").get_data(as_text=True)
    assert "Buy crayons" not in web.get("/tasks?status=TODO").get_data(as_text=True)

    edited = submit(web, f"/tasks/{task_id}/edit", {"title": "Buy paint", "status": "IN_PROGRESS",
                                                    "priority": "LOW", "version": "2"})
    assert edited.status_code == 302
    assert "Buy paint" in web.get(detail_url).get_data(as_text=True)

    deleted = submit(web, f"/tasks/{task_id}/delete", {})
    assert deleted.status_code == 302
    assert web.get(detail_url).status_code == 404


def test_other_users_task_page_is_404(client_for, make_user, sign_in, submit):
    owner, other = make_user(), make_user()
    web = client_for("taskapp")
    sign_in(web, owner.email)
    created = submit(web, "/tasks/new", {"title": "Private", "status": "TODO", "priority": "LOW"})
    task_url = created.headers["Location"]
    web2 = client_for("taskapp")
    sign_in(web2, other.email)
    assert web2.get(task_url).status_code == 404
    assert "Private" not in web2.get("/board").get_data(as_text=True)
