"""The waitlist rules of childsys: the ranked list, staff decisions (offer, reject, verify a criterion)
and the parent's side's events synced from reqsys.

Used alike by the pages, the JSON routes and the sync endpoints. A staff decision bumps the
application's version (a verification does not: it changes a criterion, not the status), adds
an audit row and stages its event in the outbox in one transaction; the outbox is relayed right
after the commit (best effort) and by the scheduled relay. Events from reqsys are applied
without new events. Class places live in childsys.capacity, the audit log's reading in
childsys.audit.
"""

from childsys.services.decisions import decide, proof_link, publish_pending, verify
from childsys.services.parent_side import ParentSide, apply_sync
from childsys.services.presenters import application_dict, criterion_dict
from childsys.services.queue import (
    PAGE_SIZE,
    all_nurseries,
    get_application,
    get_nursery,
    list_applications,
    list_enrollments,
    nursery_name,
    parse_status,
    rank_in_queue,
    status_counts,
)
from childsys.services.schemas import DecisionBody, VerifyBody

__all__ = [
    "all_nurseries",
    "get_nursery",
    "DecisionBody",
    "PAGE_SIZE",
    "ParentSide",
    "VerifyBody",
    "application_dict",
    "apply_sync",
    "criterion_dict",
    "decide",
    "get_application",
    "list_applications",
    "list_enrollments",
    "nursery_name",
    "parse_status",
    "proof_link",
    "publish_pending",
    "rank_in_queue",
    "status_counts",
    "verify",
]
