"""The shared waitlist rules: the state machine, the seed body's validation, priority scoring,
age classes and offer deadlines."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.platform.errors import Conflict
from shared.waitlist.body import ApplicationBody
from shared.waitlist.calendar import age_class, default_start, offer_deadline, school_year
from shared.waitlist.criteria import load_criteria, priority
from shared.waitlist.rules import CLOSED, Status, application_limit, next_status, should_apply

SEED = {
    "child_id": "202301013333333", "child_name": "namae", "child_birthday": "20230101", "user_id": "user",
    "parent_name": "onamae", "parent_tel": "010-0000-0000", "parent_address": "address",
    "parent_postcode": "00001", "parent_email": "user@email.com", "nursery_id": "A00017",
}


@pytest.mark.parametrize(("current", "event", "expected"), [
    (None, "REQUEST", Status.REQUESTED),
    (Status.REQUESTED, "OFFER", Status.ACCEPTED),  # staff accept: a place is offered
    (Status.REQUESTED, "ACCEPT", Status.ENROLLED),  # the old flow's accept, still in flight: it meant enrolled
    (Status.REQUESTED, "REJECT", Status.REJECTED),
    (Status.REQUESTED, "CANCEL", Status.CANCELLED),
    (Status.REQUESTED, "WITHDRAW", Status.WITHDRAWN),
    (Status.ACCEPTED, "CONFIRM", Status.ENROLLED),
    (Status.ACCEPTED, "DECLINE", Status.DECLINED),
    (Status.ACCEPTED, "EXPIRE", Status.EXPIRED),
    (Status.ACCEPTED, "WITHDRAW", Status.WITHDRAWN),
    (Status.ACCEPTED, "CANCEL", Status.CANCELLED),
    (Status.ENROLLED, "CANCEL", Status.CANCELLED),
    *[(closed, "REQUEST", Status.REQUESTED) for closed in sorted(CLOSED, key=lambda s: s.code)],
])
def test_allowed_transitions(current, event, expected):
    assert next_status(current, event) is expected


@pytest.mark.parametrize(("current", "event"), [
    (Status.REJECTED, "OFFER"),  # the original accepted a rejected application
    (Status.ACCEPTED, "REJECT"),
    (Status.ACCEPTED, "OFFER"),
    (Status.CANCELLED, "OFFER"),
    (Status.CANCELLED, "CANCEL"),
    (Status.REQUESTED, "REQUEST"),
    (Status.ACCEPTED, "REQUEST"),
    (Status.ENROLLED, "REQUEST"),
    (Status.REQUESTED, "CONFIRM"),  # nothing to confirm before an offer
    (Status.EXPIRED, "CONFIRM"),  # too late
    (Status.ENROLLED, "EXPIRE"),  # confirmed first: the expiry finds nothing to do
    (Status.ENROLLED, "WITHDRAW"),
    (None, "OFFER"),
])
def test_forbidden_transitions_are_conflicts(current, event):
    with pytest.raises(Conflict):
        next_status(current, event)


def test_status_codes_keep_the_original_numbers_and_add_new_ones():
    codes = {s.name: s.code for s in Status}
    assert {k: codes[k] for k in ("REQUESTED", "ACCEPTED", "REJECTED", "CANCELLED")} == {
        "REQUESTED": 1, "ACCEPTED": 2, "REJECTED": 88, "CANCELLED": 99}
    assert len(set(codes.values())) == len(codes)


def test_older_events_never_undo_newer_ones():
    assert should_apply(0, None, 1, "REQUEST")
    assert not should_apply(2, Status.CANCELLED, 1, "REQUEST")  # late REQUEST after CANCEL
    assert not should_apply(2, Status.ACCEPTED, 2, "OFFER")  # duplicate
    assert should_apply(2, Status.ACCEPTED, 2, "CANCEL")  # simultaneous cancel wins
    assert should_apply(2, Status.ACCEPTED, 2, "WITHDRAW")  # so does the system's withdrawal
    assert not should_apply(2, Status.CANCELLED, 2, "OFFER")
    assert not should_apply(2, Status.WITHDRAWN, 2, "OFFER")


def test_the_limit_is_three_or_two_when_enrolled():
    assert (application_limit(False), application_limit(True)) == (3, 2)


# --- priority points -----------------------------------------------------------------------------------


def test_points_add_up_and_dual_income_is_worth_200():
    criteria = load_criteria()
    assert priority(["BASIC_LIVELIHOOD"], criteria) == (1, 100)
    assert priority(["DUAL_INCOME"], criteria) == (1, 200)
    assert priority(["DUAL_INCOME", "MULTI_CHILD", "ADOPTED"], criteria) == (1, 350)
    assert priority(["ADOPTED", "GRANDPARENT_FAMILY"], criteria) == (2, 100)  # only 2순위: tier 2
    assert priority([], criteria) == (2, 0)
    assert priority(["NO_SUCH_CODE"], criteria) == (2, 0), "a code the rules dropped counts for nothing"


def test_the_repository_file_has_the_portal_items():
    criteria = load_criteria()
    tier1 = {c.code for c in criteria.values() if c.tier == 1}
    assert {"BASIC_LIVELIHOOD", "NEAR_POVERTY", "SINGLE_PARENT", "MULTI_CHILD", "DUAL_INCOME"} <= tier1
    assert all(c.points == 100 for c in criteria.values() if c.tier == 1 and c.code != "DUAL_INCOME")
    assert all(c.points == 50 for c in criteria.values() if c.tier == 2)
    assert criteria["SINGLE_PARENT"].label.ko.startswith("한부모")


def test_criteria_are_configuration_an_operator_can_replace(tmp_path):
    path = tmp_path / "criteria.json"
    path.write_text(json.dumps({"criteria": [{"code": "NEW_RULE", "tier": 1, "points": 300,
                                              "label": {"ko": "새 항목", "en": "New"}, "proof_required": False}]}))
    assert priority(["NEW_RULE"], load_criteria(str(path))) == (1, 300)
    broken = tmp_path / "broken.json"
    broken.write_text('{"criteria": [{"code": "x"}]}')
    with pytest.raises(ValueError, match="broken.json"):
        load_criteria(str(broken))


# --- classes and deadlines ------------------------------------------------------------------------------


@pytest.mark.parametrize(("born", "start", "expected"), [
    (date(2022, 1, 1), date(2023, 3, 1), 0),  # 보육사업안내: for 2023.3-2024.2, 만 0세반 = born 2022 or later
    (date(2021, 12, 31), date(2023, 3, 1), 1),
    (date(2017, 6, 1), date(2023, 3, 1), 5),
    (date(2016, 12, 31), date(2023, 3, 1), None),  # school age
    (date(2021, 5, 1), date(2024, 2, 1), 1),  # February still belongs to the school year that began in March
    (date(2021, 5, 1), date(2024, 3, 1), 2),  # March moves every child up one class
    (date(2024, 1, 5), date(2024, 2, 1), 0),  # born in the school year's own calendar year or later
])
def test_age_class_follows_the_school_year(born, start, expected):
    assert age_class(born, start) == expected


def test_school_year_starts_in_march():
    assert school_year(date(2026, 2, 1)) == 2025 and school_year(date(2026, 3, 1)) == 2026


def test_offer_deadline_is_the_end_of_the_nth_day_in_korea():
    offered = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 2 December 00:30 KST
    assert offer_deadline(offered, 7) == datetime(2026, 12, 9, 14, 59, 59)  # 9 December 23:59:59 KST


def test_default_start_is_next_month_in_korea():
    assert default_start(datetime(2026, 12, 31, 16, tzinfo=UTC)) == "2027-02"  # already 1 January in Korea


def test_the_seed_body_is_valid():
    assert ApplicationBody.model_validate(SEED).request_id == "202301013333333A00017"


def test_the_portal_fields_are_optional_and_checked():
    body = ApplicationBody.model_validate({**SEED, "desired_start": "2027-03", "criteria": ["dual_income", "ADOPTED",
                                                                                          "DUAL_INCOME"]})
    assert (body.desired_start, body.criteria) == ("2027-03", ["DUAL_INCOME", "ADOPTED"])
    for field, value in (("desired_start", "2027-13"), ("desired_start", "March"), ("criteria", ["a b"])):
        with pytest.raises(ValidationError) as err:
            ApplicationBody.model_validate({**SEED, field: value})
        assert err.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(("field", "value"), [
    ("child_birthday", "20230231"),
    ("child_birthday", (date.today() + timedelta(days=1)).strftime("%Y%m%d")),
    ("child_birthday", "2023-01-01"),
    ("parent_email", "not-an-email"),
    ("parent_tel", "12345"),
    ("parent_postcode", "1234"),
    ("nursery_id", ""),
    ("child_name", ""),
])
def test_each_invalid_field_is_named(field, value):
    with pytest.raises(ValidationError) as err:
        ApplicationBody.model_validate({**SEED, field: value})
    assert [e["loc"][0] for e in err.value.errors()] == [field]
