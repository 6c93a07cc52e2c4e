"""The waitlist's statuses and its one state machine, shared by reqsys and childsys.

Status codes (`request_status` in JSON) keep the original numbers and add the portal's:

    code  status     meaning
       1  REQUESTED  waiting in the daycare's queue (ranked)
       2  ACCEPTED   the daycare accepted and offered a place; the parent answers by offer_expires_at
       3  ENROLLED   the parent confirmed the offer (or the daycare accepted under the old flow)
      88  REJECTED   the daycare rejected the application (with a reason)
      89  DECLINED   the parent declined the offer
      90  EXPIRED    the offer was not answered by its deadline
      97  WITHDRAWN  withdrawn by the system: the child enrolled at another daycare
      99  CANCELLED  cancelled by the parent

Events for one application carry a version that grows with each state change, so a late or
duplicated event never undoes a newer one (see `should_apply`). VERIFY and PROOF change a
criterion, not the status: they are ordered by time per criterion instead.
"""

from __future__ import annotations

from enum import Enum

from flask_babel import lazy_gettext as _l

from shared.platform.auth import Identity
from shared.platform.errors import Conflict, Forbidden

SYSTEM = "system"  # the actor of what the schedule and the rules do by themselves


class Status(Enum):
    REQUESTED = 1
    ACCEPTED = 2
    ENROLLED = 3
    REJECTED = 88
    DECLINED = 89
    EXPIRED = 90
    WITHDRAWN = 97
    CANCELLED = 99

    @property
    def code(self) -> int:
        return self.value


WAITING = Status.REQUESTED
ACTIVE = frozenset({Status.REQUESTED, Status.ACCEPTED})  # what counts towards a child's limit
CLOSED = frozenset({Status.REJECTED, Status.DECLINED, Status.EXPIRED, Status.WITHDRAWN, Status.CANCELLED})

# event type -> the status it leads to, and the statuses it may start from (None: no application yet)
TRANSITIONS: dict[str, tuple[Status, frozenset[Status | None]]] = {
    "REQUEST": (Status.REQUESTED, frozenset({None, *CLOSED})),
    "OFFER": (Status.ACCEPTED, frozenset({Status.REQUESTED})),
    # the old flow's ACCEPT (an event still in flight from before offers): accepted meant enrolled
    "ACCEPT": (Status.ENROLLED, frozenset({Status.REQUESTED})),
    "REJECT": (Status.REJECTED, frozenset({Status.REQUESTED})),
    "CANCEL": (Status.CANCELLED, frozenset({Status.REQUESTED, Status.ACCEPTED, Status.ENROLLED})),
    "CONFIRM": (Status.ENROLLED, frozenset({Status.ACCEPTED})),
    "DECLINE": (Status.DECLINED, frozenset({Status.ACCEPTED})),
    "EXPIRE": (Status.EXPIRED, frozenset({Status.ACCEPTED})),
    "WITHDRAW": (Status.WITHDRAWN, frozenset({Status.REQUESTED, Status.ACCEPTED})),
}
# the parent's side ending an application wins a tie with a daycare decision made at the same moment
CLOSES_ON_TIE = frozenset({"CANCEL", "WITHDRAW"})


# what happened, as staff and admins read it (the parent's own page speaks to the parent: reqsys.views)
EVENT_LABELS = {
    "REQUEST": _l("Application sent"),
    "CANCEL": _l("Cancelled by the parent"),
    "ACCEPT": _l("Accepted by the daycare"),
    "REJECT": _l("Rejected by the daycare"),
    "OFFER": _l("Place offered"),
    "CONFIRM": _l("Confirmed by the parent"),
    "DECLINE": _l("Declined by the parent"),
    "EXPIRE": _l("Offer expired"),
    "WITHDRAW": _l("Withdrawn: enrolled elsewhere"),
    "REMIND": _l("Reminder sent"),
    "VERIFY": _l("Criterion checked"),
    "PROOF": _l("Proof uploaded"),
}


def next_status(current: Status | None, event_type: str) -> Status:
    """The status after `event_type`, or 409 Conflict for a transition the rules forbid."""
    target, allowed = TRANSITIONS[str(event_type)]
    if current not in allowed:
        state = current.name if current else "no application"
        raise Conflict(f"Cannot {str(event_type).lower()} an application that is {state.lower()}",
                       "transition_not_allowed")
    return target


def should_apply(current_version: int, current: Status | None, event_version: int, event_type: str) -> bool:
    """Whether a synced event is newer than what we hold (older or equal ones are ignored).

    The two systems number their own changes, so a parent's cancel (or the system's withdrawal)
    and a staff decision made at the same moment can carry the same version: then the parent's
    side wins, on both sides.
    """
    if event_version > current_version:
        return True
    return (event_version == current_version and str(event_type) in CLOSES_ON_TIE
            and current is not TRANSITIONS[str(event_type)][0])


# --- limits -------------------------------------------------------------------------------------------

MAX_ACTIVE = 3  # a child waits (or holds an offer) at up to three daycares...
MAX_ACTIVE_WHEN_ENROLLED = 2  # ...or two when already enrolled somewhere


def application_limit(enrolled: bool) -> int:
    return MAX_ACTIVE_WHEN_ENROLLED if enrolled else MAX_ACTIVE


def require_daycare(identity: Identity, nursery_id: str) -> None:
    """Staff act only for their own daycare; admins for any."""
    if identity.is_admin:
        return
    if "staff" not in identity.groups or not identity.daycare_id or identity.daycare_id != nursery_id:
        raise Forbidden("You can only act for your own daycare")


def staff_daycare(identity: Identity, nursery_id: str | None) -> str:
    """The daycare a request is about: the staff member's own by default; others only for admins."""
    nursery_id = nursery_id or identity.daycare_id
    if not nursery_id:
        raise Forbidden("Your account is not linked to a daycare")
    require_daycare(identity, nursery_id)
    return nursery_id
