"""The scheduled outbox relay of childsys (a Zappa `expression` event, rate(1 minute); see shared.platform.outbox)."""

from childsys import create_app
from childsys.models import OutboxEvent, db
from shared.platform.outbox import scheduled_relay

handler = scheduled_relay(create_app, db, OutboxEvent)
