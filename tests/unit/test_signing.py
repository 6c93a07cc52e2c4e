"""Signed machine-to-machine calls."""

from shared.platform.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, WINDOW_SECONDS, sign, verify

SECRET = "a-test-sync-secret-of-enough-length"
BODY = b'{"event_id": "e1", "type": "ACCEPT"}'


def test_a_signed_body_verifies():
    assert verify(SECRET, BODY, sign(SECRET, BODY))


def test_a_changed_body_wrong_secret_or_missing_headers_fail():
    headers = sign(SECRET, BODY)
    assert not verify(SECRET, BODY + b" ", headers)
    assert not verify("another-secret", BODY, headers)
    assert not verify(SECRET, BODY, {TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER]})
    assert not verify(SECRET, BODY, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]})
    assert not verify("", BODY, sign("", BODY))


def test_a_replay_outside_the_window_fails():
    headers = sign(SECRET, BODY, now=1_000_000)
    assert verify(SECRET, BODY, headers, now=1_000_000 + WINDOW_SECONDS)
    assert not verify(SECRET, BODY, headers, now=1_000_000 + WINDOW_SECONDS + 1)
    assert not verify(SECRET, BODY, headers, now=1_000_000 - WINDOW_SECONDS - 1)
