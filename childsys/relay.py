"""The scheduled outbox relay of childsys (a Zappa `expression` event, rate(1 minute); see shared.outbox)."""

from shared.outbox import scheduled_relay

handler = scheduled_relay("childsys")
