"""The sync endpoints of reqsys: childsys's events, forwarded by the pipeline (see shared.platform.sync).

/request/accept and /request/reject are the seed's paths; /request/accept now only receives an
ACCEPT still in flight from before offers existed (staff acceptance sends OFFER).
"""

from reqsys import services
from shared.platform.events import EventType
from shared.platform.sync import sync_blueprint

bp = sync_blueprint("/request", (EventType.ACCEPT, EventType.REJECT, EventType.OFFER, EventType.VERIFY),
                    services.apply_sync)
