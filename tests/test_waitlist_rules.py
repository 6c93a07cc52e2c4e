"""The shared waitlist state machine and the seed body's validation."""

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from shared.errors import Conflict
from shared.waitlist import ApplicationBody, Status, next_status, should_apply

SEED = {
    "child_id": "202301013333333", "child_name": "namae", "child_birthday": "20230101", "user_id": "user",
    "parent_name": "onamae", "parent_tel": "010-0000-0000", "parent_address": "address",
    "parent_postcode": "00001", "parent_email": "user@email.com", "nursery_id": "A00017",
}


@pytest.mark.parametrize(("current", "event", "expected"), [
    (None, "REQUEST", Status.REQUESTED),
    (Status.REQUESTED, "ACCEPT", Status.ACCEPTED),
    (Status.REQUESTED, "REJECT", Status.REJECTED),
    (Status.REQUESTED, "CANCEL", Status.CANCELLED),
    (Status.ACCEPTED, "CANCEL", Status.CANCELLED),
    (Status.CANCELLED, "REQUEST", Status.REQUESTED),
    (Status.REJECTED, "REQUEST", Status.REQUESTED),
])
def test_allowed_transitions(current, event, expected):
    assert next_status(current, event) is expected


@pytest.mark.parametrize(("current", "event"), [
    (Status.REJECTED, "ACCEPT"),  # the original accepted a rejected application
    (Status.ACCEPTED, "REJECT"),
    (Status.CANCELLED, "ACCEPT"),
    (Status.CANCELLED, "CANCEL"),
    (Status.REQUESTED, "REQUEST"),
    (Status.ACCEPTED, "REQUEST"),
    (None, "ACCEPT"),
])
def test_forbidden_transitions_are_conflicts(current, event):
    with pytest.raises(Conflict):
        next_status(current, event)


def test_status_codes_keep_the_original_numbers():
    assert [s.code for s in Status] == [1, 2, 88, 99]


def test_older_events_never_undo_newer_ones():
    assert should_apply(0, None, 1, "REQUEST")
    assert not should_apply(2, Status.CANCELLED, 1, "REQUEST")  # late REQUEST after CANCEL
    assert not should_apply(2, Status.ACCEPTED, 2, "ACCEPT")  # duplicate
    assert should_apply(2, Status.ACCEPTED, 2, "CANCEL")  # simultaneous cancel wins
    assert not should_apply(2, Status.CANCELLED, 2, "ACCEPT")


def test_the_seed_body_is_valid():
    assert ApplicationBody.model_validate(SEED).request_id == "202301013333333A00017"


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
