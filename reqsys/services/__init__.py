"""The waitlist rules of reqsys: children, applications (limits, start month, priority criteria),
cancellations, the live rank, and the daycare's decisions synced from childsys.

One function per action, used alike by the HTML forms, the JSON routes and the sync
endpoint. Every state change bumps the application's version, adds a history row and
stages its event in the outbox in the same transaction; after the commit the outbox is
relayed at once (best effort; the scheduled relay in reqsys.relay catches up otherwise).
Changes that arrive from childsys (OFFER/REJECT/VERIFY, and the old flow's ACCEPT) are
applied without a new event: they came from the pipeline. Offers are answered and expired
in reqsys.offers; proof documents are uploaded through reqsys.proofs.
"""

from reqsys.services.applications import (
    LimitReached,
    actor,
    apply,
    apply_placed,
    cancel,
    change,
    get_application,
    last_application,
    own_application,
    own_locked,
    publish_pending,
    queue_place,
    record,
    stage,
)
from reqsys.services.children import COUNTED, active_counts, get_child, list_children, of_child, register_child
from reqsys.services.decisions import DaycareDecisions, apply_sync
from reqsys.services.lists import list_all_applications, list_applications
from reqsys.services.nurseries import all_nurseries, get_nursery, search_nurseries
from reqsys.services.presenters import application_dict, criterion_dict
from reqsys.services.schemas import MONTHS_AHEAD, SEED_FIELDS, ApplicationIds, ChildBody

__all__ = [
    "apply_placed",
    "all_nurseries",
    "get_nursery",
    "search_nurseries",
    "ApplicationIds",
    "COUNTED",
    "ChildBody",
    "DaycareDecisions",
    "LimitReached",
    "MONTHS_AHEAD",
    "SEED_FIELDS",
    "active_counts",
    "actor",
    "application_dict",
    "apply",
    "apply_sync",
    "cancel",
    "change",
    "criterion_dict",
    "get_application",
    "get_child",
    "last_application",
    "list_all_applications",
    "list_applications",
    "list_children",
    "of_child",
    "own_application",
    "own_locked",
    "publish_pending",
    "queue_place",
    "record",
    "register_child",
    "stage",
]
