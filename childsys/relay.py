"""The scheduled outbox relay (a Zappa `expression` event, rate(1 minute)).

Events are written to the outbox with the change they describe and published at once
after the commit when SQS answers; this function publishes whatever is still pending.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_app = None


def _get_app():
    """The app, built once per Lambda process (warm invocations reuse it)."""
    global _app
    if _app is None:
        from childsys import create_app

        _app = create_app()
    return _app


def handler(event=None, context=None) -> int:
    """Publish pending outbox events; returns how many were sent."""
    from childsys import services

    with _get_app().app_context():
        sent = services.relay_outbox()
        pending = services.pending_events()
    if sent or pending:
        log.info("outbox relay: %d sent, %d still pending", sent, pending)
    return sent
