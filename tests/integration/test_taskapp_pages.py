"""taskapp pages: session + CSRF, errors next to fields, the board's move buttons, delete."""

from __future__ import annotations

import re

from tests.conftest import csrf_token_in
from tests.taskapp_helpers import new_task


def test_create_move_on_board_and_delete(client_for, make_user, sign_in, submit):
    user = make_user(groups=("employees",))
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
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"/board#task-{task_id}")
    # a second click from the same (now stale) board page changes nothing
    stale = web.post(f"/tasks/{task_id}/move", data={"csrf_token": csrf_token_in(board), "status": "DONE",
                                                    "version": "1"})
    assert stale.status_code == 302
    page = web.get(detail_url).get_data(as_text=True)
    assert page.count("<li>") >= 2 and "→" in page
    board = web.get("/board").get_data(as_text=True)
    columns = re.findall(r'<section class="board-column".*?</section>', board, re.S)
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
    owner, other = make_user(groups=("employees",)), make_user(groups=("employees",))
    web = client_for("taskapp")
    sign_in(web, owner.email)
    created = submit(web, "/tasks/new", {"title": "Private", "status": "TODO", "priority": "LOW"})
    task_url = created.headers["Location"]
    web2 = client_for("taskapp")
    sign_in(web2, other.email)
    assert web2.get(task_url).status_code == 404
    assert "Private" not in web2.get("/board").get_data(as_text=True)


def test_every_task_field_is_checked_at_once_with_a_summary(client_for, alice, bob, sign_in, submit):
    web = client_for("taskapp")
    sign_in(web, alice.email)
    bad = submit(web, "/tasks/new", {"title": "", "status": "TODO", "priority": "LOW", "due_date": "2030-13-45",
                                     "labels": "a,b,c,d,e,f,g,h,i,j,k", "assignee": "밥"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    for name in ("title", "due_date", "labels", "assignee"):
        assert f'id="{name}-error"' in html, name
        assert f'href="#{name}"' in html, f"the summary links to {name}"
    summary = html.split("data-error-summary", 1)[1]
    assert "이메일 주소 형식으로 입력하세요" in html.split('id="assignee-error"', 1)[1].split("</p>", 1)[0]
    assert "가입한 사용자가 없습니다" not in html and summary.count('href="#') >= 4

    unknown = submit(web, "/tasks/new", {"title": "ok", "status": "TODO", "priority": "LOW",
                                         "assignee": "nobody-here@example.com"})
    assert unknown.status_code == 400
    message = unknown.get_data(as_text=True).split('id="assignee-error"', 1)[1].split("</p>", 1)[0]
    assert "이 이메일 주소로 가입한 사용자가 없습니다" in message
    assert submit(web, "/tasks/new", {"title": "ok", "status": "TODO", "priority": "LOW",
                                      "assignee": bob.email}).status_code == 302


def test_the_board_card_form_moves_a_task_without_javascript(client_for, api, alice, sign_in):
    task = new_task(api, alice, title="자바스크립트 없이 옮길 일")
    web = client_for("taskapp")
    sign_in(web, alice.email)
    board = web.get("/board").get_data(as_text=True)
    card = board.split(f'id="task-{task["task_id"]}"', 1)[1].split("</li>\n", 1)[0]
    form = card.split('<form method="post"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    options = re.findall(r'<option value="([^"]+)"', form)
    assert options == ["IN_PROGRESS", "DONE"] and fields["version"] == "1"
    action = re.search(r'action="([^"]+)"', form)[1]
    moved = web.post(action, data={**fields, "csrf_token": csrf_token_in(board), "status": "IN_PROGRESS"})
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"/board#task-{task['task_id']}")
    board = web.get("/board").get_data(as_text=True)
    assert "“자바스크립트 없이 옮길 일” 업무를 진행 중으로 옮겼습니다." in board
    columns = re.findall(r'<section class="board-column".*?</section>', board, re.S)
    assert "자바스크립트 없이 옮길 일" in columns[1] and "(으)로" not in board

    # the board's script asks for JSON: the new version, or 409 with a message for a stale one
    token = csrf_token_in(board)
    moved = web.post(action, data={"csrf_token": token, "status": "DONE", "version": "2"},
                     headers={"Accept": "application/json"})
    assert moved.status_code == 200 and moved.get_json()["task"] == {"task_id": task["task_id"], "status": "DONE",
                                                                     "version": 3}
    stale = web.post(action, data={"csrf_token": token, "status": "TODO", "version": "2"},
                     headers={"Accept": "application/json"})
    assert stale.status_code == 409 and "다른 사람이" in stale.get_json()["error"]["message"]
    assert api.get(f"/api/tasks/{task['task_id']}", headers=alice.headers).get_json()["status"] == "DONE"


def test_the_task_table_sorts_by_due_date_and_pages_by_cursor(client_for, api, alice, bob, sign_in):
    for title, due in (("둘째", "2030-02-01"), ("셋째", "2030-03-01"), ("첫째", "2030-01-01")):
        new_task(api, alice, title=title, due_date=due, assignee=bob.email)
    web = client_for("taskapp")
    sign_in(web, alice.email)

    def titles(html: str) -> list[str]:
        return re.findall(r'<td class="title"><a [^>]*>([^<]+)</a>', html)

    page = web.get("/tasks").get_data(as_text=True)
    assert titles(page) == ["첫째", "둘째", "셋째"]
    header = page.split('<th scope="col" aria-sort=', 1)[1].split("</th>", 1)[0]
    assert header.startswith('"ascending"') and "마감일" in header and "sort=due_desc" in header
    assert "<th scope=\"col\">담당자</th>" in page and bob.email in page and "2030-02-01" in page

    page = web.get("/tasks?sort=due_desc").get_data(as_text=True)
    assert titles(page) == ["셋째", "둘째", "첫째"]
    assert 'aria-sort="descending"' in page

    first = web.get("/tasks?sort=due_desc&limit=2").get_data(as_text=True)
    assert titles(first) == ["셋째", "둘째"]
    next_url = re.search(r'href="([^"]*cursor=[^"]+)"', first)[1].replace("&amp;", "&")
    assert "sort=due_desc" in next_url
    assert titles(web.get(next_url + "&limit=2").get_data(as_text=True)) == ["첫째"]
    assert titles(web.get("/tasks?sort=created").get_data(as_text=True)) == ["첫째", "셋째", "둘째"]
