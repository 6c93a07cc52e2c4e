"""The scheduled outbox relay of reqsys (a Zappa `expression` event, rate(1 minute); see shared.platform.outbox)."""

from reqsys import create_app
from reqsys.models import OutboxEvent, db
from shared.platform.outbox import scheduled_relay

handler = scheduled_relay(create_app, db, OutboxEvent)
