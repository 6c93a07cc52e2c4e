"""childsys's JSON routes for the OpenAPI document (shared.platform.openapi): endpoint -> Route."""

from __future__ import annotations

from childsys import services
from childsys.forms import AuditQuery, DaycareQuery, ListQuery
from shared.platform.events import Envelope
from shared.platform.openapi import Route

ROUTES = {
    "api.api_list": Route("The daycare's applications in rank order (staff; admins name the daycare)",
                          query=ListQuery),
    "api.api_accept": Route("Offer a place to an application", body=services.DecisionBody, refusals=(
        "400", "401", "403", "404", "409")),
    "api.api_reject": Route("Reject an application", body=services.DecisionBody, refusals=(
        "400", "401", "403", "404", "409")),
    "api.api_verify": Route("Verify or reject a declared priority criterion", body=services.VerifyBody,
                            refusals=("400", "401", "403", "404", "409")),
    "api.api_classes": Route("Places per age class", query=DaycareQuery),
    "api.api_audit": Route("The daycare's audit log, newest first", query=AuditQuery),
    "api.api_proof": Route("A download link for a criterion's proof document", status=302),
    **{f"sync.{t.lower()}": Route(f"The pipeline delivers a {t} event (signed, idempotent)", body=Envelope,
                                  auth="signature", refusals=("400", "401"))
       for t in ("REQUEST", "CANCEL", "CONFIRM", "DECLINE", "EXPIRE", "PROOF", "WITHDRAW")},
}
