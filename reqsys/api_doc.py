"""reqsys's JSON routes for the OpenAPI document (shared.platform.openapi): endpoint -> Route."""

from __future__ import annotations

from reqsys import proofs, services
from reqsys.contact_views import ContactCode
from shared.platform.events import Envelope
from shared.platform.openapi import Route
from shared.waitlist.body import ApplicationBody

STATE = ("400", "401", "403", "404", "409")

ROUTES = {
    "main.api_nurseries": Route("The daycares", auth="none", refusals=()),
    "main.api_criteria": Route("The priority criteria a parent may declare, and the limits", auth="none",
                               refusals=()),
    "monitor.api_queues": Route("Depths of the pipeline's queues and dead-letter queues (admins)",
                                refusals=("401", "403")),
    "monitor.api_dead_letters": Route("The messages in one dead-letter queue, with the last failure's reason (admins)",
                                      refusals=("401", "403", "404", "503")),
    "monitor.api_redrive": Route("Send a dead-letter queue's messages (or one: `message_id`) back to be handled "
                                 "again; a stream's failures are replayed from the events table (admins)",
                                 refusals=("400", "401", "403", "404", "503")),
    "contact.confirm_json": Route("Confirm a notice address with the code emailed to it", body=ContactCode,
                                  auth="none", refusals=("400", "404", "409")),
    "enterwait.list_applications": Route("The parent's applications with rank and score (admins: everyone's)",
                                         refusals=("401", "403")),
    "enterwait.request_application": Route("Apply for a place at a daycare (the seed's body)", body=ApplicationBody,
                                           status=201, refusals=STATE),
    "enterwait.cancel_application": Route("Cancel an application", body=services.ApplicationIds, refusals=STATE),
    "enterwait.confirm_offer": Route("Accept an offered place", body=services.ApplicationIds, refusals=STATE),
    "enterwait.decline_offer": Route("Decline an offered place", body=services.ApplicationIds, refusals=STATE),
    "enterwait.proof_upload_form": Route("A presigned form to upload a proof document to S3",
                                         body=proofs.UploadRequest, refusals=STATE),
    "enterwait.register_proof": Route("Record an uploaded proof document (checked, kept as a copy)",
                                      body=proofs.Uploaded, refusals=STATE),
    **{f"sync.{t}": Route(f"The pipeline delivers the daycare's {t.upper()} (signed, idempotent)", body=Envelope,
                          auth="signature", refusals=("400", "401"))
       for t in ("accept", "offer", "reject", "verify")},
}
