"""The sync endpoints of childsys: the parent's side's events (requests, cancellations, answers to
offers, withdrawals, proofs), forwarded by the pipeline (see shared.platform.sync). /enterwait/request and
/enterwait/cancel are the seed's paths."""

from childsys import services
from shared.platform.events import EventType
from shared.platform.sync import sync_blueprint

bp = sync_blueprint("/enterwait", (EventType.REQUEST, EventType.CANCEL, EventType.CONFIRM, EventType.DECLINE,
                                   EventType.EXPIRE, EventType.WITHDRAW, EventType.PROOF), services.apply_sync)
