"""HMAC signatures for the machine-to-machine sync calls (forward handler -> app endpoints).

The signature covers the timestamp and the exact body bytes, with the shared
SYNC_SECRET. A call outside the time window is refused, so a captured request cannot
be replayed later; inside the window the endpoints are idempotent by event_id.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
WINDOW_SECONDS = 300


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Headers to send with `body`."""
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: _digest(secret, timestamp, body)}


def verify(secret: str, body: bytes, headers, now: float | None = None) -> bool:
    """True only for a correct signature made within the time window."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not secret or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signature:
        return False
    current = now if now is not None else time.time()
    if abs(current - int(timestamp)) > WINDOW_SECONDS:
        return False
    return hmac.compare_digest(signature, _digest(secret, timestamp, body))
