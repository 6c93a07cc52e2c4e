"""Where a parent's notices go: only to verified addresses.

By default the signed-in account's own email (Cognito verified it at sign-up). A different
`parent_email` in an application (the seed's body has one) is kept with the application, and gets
the notices only once someone confirmed it through the code sent to it, in a fixed text that carries
nothing the applicant typed. Until then the notices go to the account's email, and the parent's page
says so. An address confirmed once counts for all of that account's applications.

The application's `notify_email` is the address its events carry (the email handler sends there).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import func, select, update

from reqsys.models import Application, ContactEmail, db, utcnow
from shared.platform.auth import Identity
from shared.platform.errors import NotFound

log = logging.getLogger(__name__)
RESEND_AFTER = timedelta(minutes=10)  # one code per address and account at most this often
CODE_VALID = timedelta(days=7)

SUBJECT = "[어린이집 입소대기] 알림 받을 주소 확인 / Confirm this address for notices"
TEXT = """안녕하세요.

어린이집 입소대기 서비스의 한 계정이 이 주소를 입소대기 알림을 받을 주소로 적었습니다.
이 주소로 알림을 받으시려면 아래 링크를 열어 확인해 주세요. 확인하지 않으면 이 주소로는
아무 알림도 가지 않습니다. 모르는 일이면 이 메일을 무시하세요.

{link}

확인 코드: {code}

---

An account of the daycare waitlist service gave this address for its waitlist notices.
To receive them here, open the link above and confirm. Until someone confirms, nothing
is sent to this address. If this was not you, ignore this email.
"""


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def is_accounts_own(identity: Identity, email: str) -> bool:
    return bool(identity.email) and email.strip().lower() == identity.email.strip().lower()


def confirmed(parent_sub: str, email: str) -> bool:
    return db.session.scalar(select(ContactEmail.id).where(
        ContactEmail.parent_sub == parent_sub, ContactEmail.email == email.strip().lower(),
        ContactEmail.confirmed_at.is_not(None))) is not None


_UNREAD = object()


@dataclass(frozen=True)
class ContactSeen:
    """The account's record of an address as a caller read its columns (the row itself is read to write it)."""

    id: int
    confirmed_at: datetime | None
    sent_at: datetime


def notify_address(identity: Identity, parent_email: str, row=_UNREAD) -> tuple[str | None, bool]:
    """(where the notices go, whether parent_email still waits for its confirmation); `row`: the account's
    ContactEmail (or ContactSeen) of that address, or None, when the caller read it already."""
    if is_accounts_own(identity, parent_email):
        return parent_email, False
    if row is _UNREAD:
        is_confirmed = confirmed(identity.sub, parent_email)
    else:
        is_confirmed = row is not None and row.confirmed_at is not None
    if is_confirmed:
        return parent_email, False
    return identity.email or None, True


def contact_code(identity: Identity, email: str, row=_UNREAD) -> str | None:
    """A new code for an address the account gave (in the caller's transaction), or None when it is
    confirmed already or a code went out lately; `row` as in notify_address."""
    email = email.strip().lower()
    if row is _UNREAD:
        row = db.session.scalars(select(ContactEmail).where(ContactEmail.parent_sub == identity.sub,
                                                            ContactEmail.email == email)).first()
    if row is not None and (row.confirmed_at is not None or utcnow() - row.sent_at < RESEND_AFTER):
        return None
    code = secrets.token_urlsafe(18)
    if row is None:
        row = ContactEmail(parent_sub=identity.sub, email=email)
        db.session.add(row)
    elif isinstance(row, ContactSeen):
        row = db.session.get(ContactEmail, row.id)
    row.code_hash, row.sent_at = _hash(code), utcnow()
    return code


def send_contact_code(email: str, code: str) -> bool:
    """Email the confirmation link and code (fixed text) to the address; False (logged) if SES refused."""
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.platform.aws import client

    link = url_for("contact.confirm_page", code=code, _external=True)
    try:
        client("ses").send_email(
            Source=current_app.config["SETTINGS"].resource("SES_SENDER"), Destination={"ToAddresses": [email]},
            Message={"Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": TEXT.format(link=link, code=code), "Charset": "UTF-8"}}})
    except (BotoCoreError, ClientError, KeyError) as err:
        log.warning("confirmation code for a contact address not sent: %s", type(err).__name__)
        return False
    return True


def confirm_contact(code: str) -> ContactEmail:
    """Confirm the address a code was sent to: the account's applications giving it send their notices
    there from now on (their next events carry it). 404 for an unknown or stale code."""
    code = (code or "").strip()
    row = db.session.scalars(select(ContactEmail).where(ContactEmail.code_hash == _hash(code))).first() \
        if 10 <= len(code) <= 64 else None
    if row is None or (row.confirmed_at is None and utcnow() - row.sent_at > CODE_VALID):
        raise NotFound("This confirmation code is unknown or has expired")
    if row.confirmed_at is None:
        row.confirmed_at = utcnow()
    db.session.execute(update(Application).where(
        Application.parent_sub == row.parent_sub, func.lower(Application.parent_email) == row.email)
        .values(notify_email=Application.parent_email).execution_options(synchronize_session=False))
    db.session.commit()
    return row
