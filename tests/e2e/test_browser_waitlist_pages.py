"""The waitlist pages in the system Chromium, as a parent and as staff: every form error after one submit,
proof refusals beside their file box on a phone, staff offers that ask first, Korean error pages, and
(where axe-playwright-python is installed) no critical or serious accessibility finding."""

from __future__ import annotations

import pytest

from tests.waitlist_browser import (
    DESKTOP,
    PHONE,
    application_id,
    axe_problems,
    child_id,
    fill_apply,
    in_viewport,
    new_page,
    page_width,
    register_child,
    seed_body,
    send,
    serve,
    sign_in,
    sync_into,
)

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def reqsys_site(make_app, live_server):
    return serve(make_app, live_server, "reqsys")


@pytest.fixture
def childsys_site(make_app, live_server):
    return serve(make_app, live_server, "childsys")


@pytest.fixture
def parent_page(chromium, reqsys_site, make_user):
    """A parent signed in to reqsys on a phone, with a child registered (its id in page.kid)."""
    _app, base = reqsys_site
    parent = make_user(groups=("parents",), name="김부모")
    page = new_page(chromium, PHONE)
    sign_in(page, base, parent.email, parent.password)
    page.kid = child_id()
    register_child(page, base, page.kid)
    yield page
    page.context.close()


def test_the_apply_form_shows_every_error_after_one_submit(parent_page, reqsys_site):
    _app, base = reqsys_site
    page = parent_page
    fill_apply(page, base, "A00017", desired_start="2020-01", parent_tel="12345", parent_email="not-an-email",
               parent_postcode="123456789")
    send(page, "신청하기")

    summary = page.locator("[data-error-summary]")
    assert summary.is_visible() and "입력 내용을 확인해 주세요" in summary.inner_text()
    links = summary.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "#desired_start", "#parent_tel", "#parent_email", "#parent_postcode"], "one link per bad field, in order"
    assert page.evaluate("document.activeElement.id") == "error-summary", "focused, so it is read out"
    messages = {name: page.locator(f"#{name}-error").inner_text() for name in
                ("desired_start", "parent_tel", "parent_email", "parent_postcode")}
    assert "사이의 달을 고르세요" in messages["desired_start"]
    assert "010-1234-5678" in messages["parent_tel"]
    assert "이메일 주소" in messages["parent_email"]
    assert "5자리" in messages["parent_postcode"]
    for name in messages:  # each message sits right under its own box
        field, error = page.locator(f"#{name}").bounding_box(), page.locator(f"#{name}-error").bounding_box()
        assert 0 <= error["y"] - (field["y"] + field["height"]) < 40, name
    assert page.locator("#parent_tel").get_attribute("aria-invalid") == "true"
    assert page.locator("#parent_name-error").count() == 0, "good fields stay quiet"
    assert page_width(page) <= PHONE["width"]

    # the right message for the rule: a 600-character address is too long, not missing
    fill_apply(page, base, "A00017", parent_address="가" * 600)
    send(page, "신청하기")
    assert "너무 깁니다" in page.locator("#parent_address-error").inner_text()
    assert page.locator("[data-error-summary] a").count() == 1


def _apply_with_proof_item(page, base):
    fill_apply(page, base, "A00017", criteria=["DUAL_INCOME"])
    send(page, "신청하기")
    page.rid = application_id(page, page.kid + "A00017")
    item = page.locator(f"[id='criterion-{page.rid}-DUAL_INCOME']")
    assert item.get_attribute("data-status") == "PENDING"
    return item


def test_a_refused_proof_shows_its_error_beside_the_file_box_on_a_phone(parent_page, reqsys_site):
    _app, base = reqsys_site
    page = parent_page
    item = _apply_with_proof_item(page, base)
    box, error = item.locator("input[type=file]"), item.locator(".error")

    # refused in the browser: a 6 MB PDF is not sent at all
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    box.set_input_files(files=[{"name": "big.pdf", "mimeType": "application/pdf",
                                "buffer": PDF + b"0" * (6 * 1024 * 1024)}])
    item.get_by_role("button", name="증빙 서류 올리기").click()
    assert error.is_visible() and "너무 큽니다" in error.inner_text()
    assert in_viewport(page, error) and in_viewport(page, box), "in view, beside the box"
    assert box.get_attribute("aria-invalid") == "true"
    assert sent == [], "nothing was sent"

    # a wrong type is refused on choosing it
    box.set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    assert "PDF, JPG, PNG" in error.inner_text()

    # refused by the server: a text file dressed as a PNG goes to S3, the check refuses it, and the
    # page comes back to this criterion with the message beside its box, in view
    box.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": b"not an image" * 50}])
    assert error.is_hidden(), "a plausible file clears the message"
    with page.expect_navigation(url="**/applications?*"):
        item.get_by_role("button", name="증빙 서류 올리기").click()
    page.wait_for_load_state()
    item = page.locator(f"[id='criterion-{page.rid}-DUAL_INCOME']")
    error = item.locator(".error")
    assert error.is_visible() and "파일 내용이 파일 형식과 맞지 않습니다" in error.inner_text()
    assert in_viewport(page, error), "the message is on screen after the reload, not 2,000 px above"
    gap = error.bounding_box()["y"] - item.locator("input[type=file]").bounding_box()["y"]
    assert 0 < gap < 120, "right under the file box"
    assert page_width(page) <= PHONE["width"]

    # and a real PDF goes through, with the page back at the criterion
    item.locator("input[type=file]").set_input_files(
        files=[{"name": "재직증명서.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    with page.expect_navigation(url="**/applications#*"):
        item.get_by_role("button", name="증빙 서류 올리기").click()
    assert "재직증명서.pdf" in page.locator(f"[id='criterion-{page.rid}-DUAL_INCOME']").inner_text()


def test_the_parents_card_says_the_rank_out_of_how_many_and_what_each_button_does(parent_page, reqsys_site):
    _app, base = reqsys_site
    page = parent_page
    _apply_with_proof_item(page, base)
    card = page.locator(f"[id='application-{page.rid}']")
    queue = card.locator(".queue")
    total = int(queue.get_attribute("data-waiting"))
    assert f"대기 {total}명 중 {queue.get_attribute('data-rank')}위" in queue.inner_text()
    assert "대기를 완전히 그만둡니다" in card.inner_text(), "cancelling is explained beside its button"
    # cancelling asks first; dismissed, nothing changes
    card.get_by_role("button", name="신청 취소").click()
    dialog = page.locator(f"[id='cancel-{page.rid}']")
    assert dialog.is_visible()
    dialog.get_by_role("button", name="그대로 두기").click()
    assert dialog.is_hidden() and card.locator(".badge").get_attribute("data-status") == "REQUESTED"
    card.get_by_role("button", name="신청 취소").click()
    with page.expect_navigation():
        dialog.get_by_role("button", name="신청 취소").click()
    assert page.url.endswith(f"#application-{page.rid}"), "back at the card acted on"
    card = page.locator(f"[id='application-{page.rid}']")
    assert card.locator(".badge").get_attribute("data-status") == "CANCELLED"
    assert "신청을 취소했습니다" in card.inner_text() or "취소" in card.locator(".flashes").inner_text(), \
        "the message moved into the card"


@pytest.fixture
def staff_site(childsys_site, make_user, bearer):
    app, base = childsys_site
    staff = make_user(groups=("staff",), daycare_id="A00017", name="이교사")
    return app, base, staff, bearer(staff.email, app_name="childsys")


def _status(app, headers, request_id) -> str:
    listed = app.test_client().get("/request", headers=headers).json["applications"]
    return next(a["status"] for a in listed if a["request_id"] == request_id)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_staff_offer_is_sent_only_when_confirmed(chromium, staff_site, viewport):
    app, base, staff, headers = staff_site
    body = seed_body(child_name="박하늘", criteria=["DUAL_INCOME", "MULTI_CHILD"])
    sync_into(app, "REQUEST", body)
    request_id = body["child_id"] + "A00017"
    page = new_page(chromium, viewport)
    sign_in(page, base, staff.email, staff.password)
    page.goto(f"{base}/applications")
    row_button = page.locator(f"#row-{request_id}").get_by_role("button", name="입소 제안")
    dialog = page.locator(f"#offer-{request_id}")

    row_button.click()
    assert dialog.is_visible()
    text = dialog.inner_text()
    assert "부모(김부모)에게 이메일이 가고, 부모는 7일 안에 답해야 합니다" in text
    assert "맞벌이" in text and "다자녀" in text, "the unchecked criteria are named"
    assert axe_problems(page) == [], "the open dialog (its focused first button included) is accessible"
    dialog.get_by_role("button", name="취소").click()
    assert dialog.is_hidden()
    row_button.click()
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    page.reload()
    assert _status(app, headers, request_id) == "REQUESTED", "dismissed: nothing sent"

    page.locator(f"#row-{request_id}").get_by_role("button", name="입소 제안").click()
    with page.expect_navigation():
        page.locator(f"#offer-{request_id}").get_by_role("button", name="입소 제안 보내기").click()
    assert "입소를 제안했습니다" in page.locator(".flashes").inner_text()
    assert _status(app, headers, request_id) == "ACCEPTED", "confirmed: sent"
    assert page_width(page) <= viewport["width"]
    page.context.close()


def test_without_javascript_an_offer_leads_to_a_confirmation_page(chromium, staff_site):
    app, base, staff, headers = staff_site
    body = seed_body(child_name="최바다", criteria=["DUAL_INCOME"])
    sync_into(app, "REQUEST", body)
    request_id = body["child_id"] + "A00017"
    page = new_page(chromium, PHONE, java_script_enabled=False)
    sign_in(page, base, staff.email, staff.password)
    page.goto(f"{base}/applications/{request_id}")
    with page.expect_navigation():
        page.get_by_role("button", name="승인 (입소 제안)").click()
    assert page.locator("h1").inner_text() == "최바다에게 입소를 제안할까요?"
    asked = page.locator("main").inner_text()
    assert "7일 안에 답해야 합니다" in asked and "맞벌이" in asked
    assert _status(app, headers, request_id) == "REQUESTED", "asked, not sent"
    with page.expect_navigation():
        page.get_by_role("button", name="입소 제안 보내기").click()
    assert _status(app, headers, request_id) == "ACCEPTED"

    # rejecting asks too, and says the parent is emailed the reason
    other = seed_body(child_name="정구름")
    sync_into(app, "REQUEST", other)
    page.goto(f"{base}/applications/{other['child_id']}A00017")
    page.locator("#reason").fill("정원이 모두 찼습니다")
    with page.expect_navigation():
        page.get_by_role("button", name="반려").click()
    assert "반려 사유가 담긴 이메일" in page.locator("main").inner_text()
    assert _status(app, headers, other["child_id"] + "A00017") == "REQUESTED"
    page.context.close()


def test_a_bad_class_in_the_address_is_a_korean_400_naming_the_field(chromium, staff_site):
    _app, base, staff, _headers = staff_site
    page = new_page(chromium, DESKTOP)
    sign_in(page, base, staff.email, staff.password)
    answer = page.goto(f"{base}/applications?class=9")
    assert answer.status == 400
    text = page.locator("main").inner_text()
    assert "이 페이지 주소에 쓸 수 없는 값이 들어 있습니다" in text and "0세반부터 5세반 중에서 고르세요" in text
    assert "Input should" not in text and "class:" not in text
    page.goto(f"{base}/applications/NOPE123A00017")
    assert "그런 신청이 없거나" in page.locator("main").inner_text()

    page.goto(f"{base}/lang/en")
    answer = page.goto(f"{base}/applications?class=9")
    text = page.locator("main").inner_text()
    assert answer.status == 400 and "Choose a class from 0세반 to 5세반." in text
    assert "The address of this page has a value we cannot use." in text
    page.context.close()


def test_proofs_open_in_the_browser_and_the_enrolled_list_shows_the_start_month(chromium, staff_site):
    from shared.platform.aws import client

    app, base, staff, headers = staff_site
    body = seed_body(child_name="한봄", desired_start="2027-03", criteria=["DUAL_INCOME"])
    sync_into(app, "REQUEST", body)
    request_id = body["child_id"] + "A00017"
    bucket = app.config["SETTINGS"].resource("UPLOADS_BUCKET")
    key = f"proofs/parent-sub/{request_id}/DUAL_INCOME/{'a' * 32}.checked"
    client("s3").put_object(Bucket=bucket, Key=key, Body=PDF, ContentType="application/pdf")
    proof = {"code": "DUAL_INCOME", "status": "PENDING", "proof_key": key, "proof_name": "재직 증명서.pdf"}
    sync_into(app, "PROOF", {**body, "criterion": proof})

    page = new_page(chromium, DESKTOP)
    sign_in(page, base, staff.email, staff.password)
    page.goto(f"{base}/applications/{request_id}")
    href = page.get_by_role("link", name="증빙 서류 열기: 재직 증명서.pdf").get_attribute("href")
    opened = page.request.get(base + href, max_redirects=0)
    shown = page.request.get(opened.headers["location"])
    assert shown.body() == PDF
    assert shown.headers["content-type"] == "application/pdf"
    assert shown.headers["content-disposition"].startswith("inline;"), "shown, not downloaded"
    assert "%EC%9E%AC%EC%A7%81" in shown.headers["content-disposition"], "with the parent's file name"

    assert app.test_client().post("/request/accept", json=body, headers=headers).status_code == 200
    sync_into(app, "CONFIRM", body, version=3)
    page.goto(f"{base}/enrolled")
    row = page.locator("tr", has_text="한봄")
    assert "2027-03" in row.inner_text(), "the start month, not the moment it was confirmed"
    page.goto(f"{base}/applications/{request_id}")
    assert "확인 대기" not in page.locator("#criteria").inner_text()
    assert "확인하지 않음(더 필요 없음)" in page.locator("#criteria").inner_text()
    page.context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_waitlist_pages_pass_axe_and_fit_a_phone(chromium, reqsys_site, staff_site, make_user, viewport):
    pytest.importorskip("axe_playwright_python")
    _app, parent_base = reqsys_site
    app, base, staff, _headers = staff_site
    body = seed_body(child_name="윤하늘", criteria=["DUAL_INCOME"])
    sync_into(app, "REQUEST", body)
    parent = make_user(groups=("parents",), name="김부모")
    problems = {}
    page = new_page(chromium, viewport)
    sign_in(page, parent_base, parent.email, parent.password)
    page.kid = child_id()
    register_child(page, parent_base, page.kid)
    _apply_with_proof_item(page, parent_base)
    for path in ("/", "/nurseries", "/children", "/nurseries/A00017/apply", "/applications"):
        page.goto(parent_base + path)
        problems[path] = axe_problems(page)
        assert page_width(page) <= max(viewport["width"], PHONE["width"]), path
    page.context.close()
    page = new_page(chromium, viewport)
    sign_in(page, base, staff.email, staff.password)
    for path in ("/applications", f"/applications/{body['child_id']}A00017", "/classes", "/enrolled", "/audit"):
        page.goto(base + path)
        problems["childsys" + path] = axe_problems(page)
        assert page_width(page) <= max(viewport["width"], PHONE["width"]), path
    page.context.close()
    assert {path: found for path, found in problems.items() if found} == {}
