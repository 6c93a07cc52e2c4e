"""Email (seed: "Send Email"): email queue -> SES, one email per event to the parent.

Each SQS body is the EventBridge event the bus's rule delivered; its `detail` is the
envelope. The email (Jinja templates in templates/email/, one per event type, text and
HTML, Korean first with English below) goes to the verified address the event carries
(`notify_email`; events from before it existed: `parent_email`) from SES_SENDER.

It is sent with SES `SendRawEmail` as one multipart/alternative MIME message: the same
email SES's `SendEmail` would build from Text + Html, but the emulator only keeps one body
of a `SendEmail` (the HTML), while it keeps the whole raw message, so locally both parts
can be checked (see shared.pipeline.mailbox).

Effects once, by event_id: `email#<event_id>` in IDEMPOTENCY_TABLE is claimed (in progress) before the
send and marked completed after it (shared.platform.idempotency, with a 7-day `expiration` TTL); a
concurrent duplicate finds the claim and is retried later, an event found completed is not sent again.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from typing import Any

from shared.pipeline import envelope_in, settings
from shared.platform.aws import client
from shared.platform.batch import MalformedMessage, process_sqs_batch
from shared.platform.clock import local_time
from shared.platform.events import Envelope, EventType
from shared.platform.idempotency import claim
from shared.platform.logs import fields, setup

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates" / "email"
IDEMPOTENCY_TTL = timedelta(days=7)
PREFIX = "[어린이집 입소대기]"
SUBJECTS = {
    EventType.REQUEST: ("{child} 어린이의 입소대기 신청이 접수되었습니다", "Application received"),
    EventType.CANCEL: ("{child} 어린이의 입소대기 신청이 취소되었습니다", "Application cancelled"),
    EventType.ACCEPT: ("{child} 어린이의 입소대기 신청이 승인되었습니다", "Application accepted"),
    EventType.REJECT: ("{child} 어린이의 입소대기 신청이 반려되었습니다", "Application rejected"),
    EventType.OFFER: ("{child} 어린이에게 입소가 제안되었습니다. 기한 안에 답해 주세요", "Place offered"),
    EventType.REMIND: ("{child} 어린이의 입소 제안 답변 기한이 다가옵니다", "Reminder: answer the offer"),
    EventType.CONFIRM: ("{child} 어린이의 입소가 확정되었습니다", "Enrolment confirmed"),
    EventType.DECLINE: ("{child} 어린이의 입소 제안을 거절하셨습니다", "Offer declined"),
    EventType.EXPIRE: ("{child} 어린이의 입소 제안 기한이 지났습니다", "Offer expired"),
    EventType.WITHDRAW: ("{child} 어린이의 다른 입소대기 신청이 철회되었습니다", "Application withdrawn"),
    EventType.VERIFY: ("{child} 어린이의 입소 우선순위 항목 확인 결과를 알려 드립니다", "Priority criterion checked"),
}  # PROOF is the parent's own upload: no email
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@cache
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, keep_trailing_newline=True)


def _one_line(value: Any) -> str:
    return _CONTROL.sub(" ", str(value or "")).strip()


def _date(value: str) -> str:
    """The seed's YYYYMMDD as YYYY-MM-DD (left alone when it is something else)."""
    value = _one_line(value)
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if re.fullmatch(r"\d{8}", value) else value or "-"


def subject_for(envelope: Envelope) -> str:
    korean, english = SUBJECTS[envelope.type]
    child = _one_line(envelope.application.get("child_name"))[:50] or "자녀"
    return f"{PREFIX} {korean.format(child=child)} / {english}"


def _kst(value: Any) -> str:
    """An ISO 8601 time from the event as Korean local time ("" when absent or unreadable)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    return local_time(moment, fmt="%Y-%m-%d %H:%M (KST)")


def render(envelope: Envelope) -> tuple[str, str, str]:
    """(subject, text, html) of the email for an event."""
    app = envelope.application
    subject = subject_for(envelope)
    nursery_id, nursery_name = _one_line(app.get("nursery_id")) or "-", _one_line(app.get("nursery_name"))
    criterion = app.get("criterion") if isinstance(app.get("criterion"), dict) else {}
    context = {
        "subject": subject,
        "type": str(envelope.type),
        "parent_name": _one_line(app.get("parent_name")) or "보호자",
        "child_name": _one_line(app.get("child_name")) or "-",
        "child_birthday": _date(app.get("child_birthday", "")),
        "nursery_id": nursery_id,
        "nursery": f"{nursery_name} ({nursery_id})" if nursery_name and nursery_name != nursery_id else nursery_id,
        "nursery_name": nursery_name or nursery_id,
        "offer_expires_at": _kst(app.get("offer_expires_at")),
        "enrolled_nursery_name": _one_line(app.get("enrolled_nursery_name")),
        "criterion_ko": _one_line(criterion.get("label_ko") or criterion.get("code")),
        "criterion_en": _one_line(criterion.get("label_en") or criterion.get("code")),
        "criterion_verified": criterion.get("status") == "VERIFIED",
        "criterion_reason": str(criterion.get("reason") or "").strip(),
        "request_id": envelope.request_id or "-",
        "occurred_at": local_time(envelope.occurred_at, fmt="%Y-%m-%d %H:%M (KST)"),
        "reason": str(app.get("reason") or "").strip(),
        "event_id": envelope.event_id,
    }
    name = str(envelope.type).lower()
    environment = _environment()
    text = environment.get_template(f"{name}.txt").render(context)
    html = environment.get_template(f"{name}.html").render(context)
    return subject, text, html


def build_message(sender: str, to: str, subject: str, text: str, html: str) -> bytes:
    """A multipart/alternative email (text, then HTML), UTF-8, CRLF line ends, as SES wants it."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text, charset="utf-8", cte="base64")  # 7-bit safe, as SES recommends
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return message.as_bytes(policy=SMTP)


def parse(body: str) -> Envelope:
    """The envelope in an EventBridge event (an SQS body), or MalformedMessage."""
    envelope = envelope_in(body)
    if not _one_line(envelope.application.get("parent_email")):
        raise MalformedMessage(f"event {envelope.event_id}: application has no parent_email")
    return envelope


def recipient(envelope: Envelope) -> str:
    """Where the email goes: the verified `notify_email` the event carries (the account's own email, or
    a parent_email someone confirmed; "" when there is none); an event from before it carried one: the
    parent_email."""
    app = envelope.application
    return _one_line(app["notify_email"] if "notify_email" in app else app.get("parent_email"))


def send(envelope: Envelope, sender: str, table: str) -> bool:
    """Email the parent about the event unless already done; True if an email was sent.

    The event is claimed first (shared.platform.idempotency): of two deliveries at the same moment one
    sends, the other finds the claim in progress and is retried later, when it finds the email sent.
    Only a verified address is written to (`recipient`)."""
    to = recipient(envelope)
    if not to:
        log.warning("no verified address to notify, not sent", extra=fields(envelope))
        return False
    with claim(table, f"email#{envelope.event_id}", ttl=IDEMPOTENCY_TTL) as work:
        if work.done:
            log.info("email already sent, skipped", extra=fields(envelope))
            return False
        subject, text, html = render(envelope)
        result = client("ses").send_raw_email(Source=sender, Destinations=[to],
                                              RawMessage={"Data": build_message(sender, to, subject, text, html)})
        work.data.update({"sent_at": datetime.now(UTC).isoformat(), "message_id": result.get("MessageId", "")})
    log.info("email sent", extra=fields(envelope, message_id=result.get("MessageId")))
    return True


def handler(event: dict, context: Any = None) -> dict:
    setup("pipeline")
    config = settings()
    sender, table = config.resource("SES_SENDER"), config.resource("IDEMPOTENCY_TABLE")
    return process_sqs_batch(event, lambda record: send(parse(record["body"]), sender, table), hop="email",
                             failures_table=table, context=context)
