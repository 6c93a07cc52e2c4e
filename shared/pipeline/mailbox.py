"""Locally, the emails SES "sent": read from the emulator, for tests, an admin page and a CLI.

moto server exposes its in-memory models at `GET {AWS_ENDPOINT_URL}/moto-api/data.json`;
SES keeps `RawMessage` (SendRawEmail: the whole MIME message) and `Message` (SendEmail:
subject and ONE body, the HTML part if there was one, else the text). Both are listed,
oldest first. Only against the emulator: in AWS, SES keeps no copy to read.

    python -m shared.pipeline.mailbox [--to EMAIL] [--html] [--last N]
"""

from __future__ import annotations

import argparse
import email
import json
import os
import sys
import urllib.request
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any


def _endpoint() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        from shared.platform.settings import LOCAL_ENDPOINT

        endpoint = LOCAL_ENDPOINT if os.environ.get("STAGE", "local") == "local" else ""
    if not endpoint:
        raise RuntimeError("the mailbox only exists on the local AWS emulator (AWS_ENDPOINT_URL is not set)")
    return endpoint.rstrip("/")


def _model_data(endpoint: str) -> dict[str, Any]:
    url = f"{endpoint}/moto-api/data.json"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the local emulator's URL
        return json.load(response)


def _from_raw(item: dict) -> dict[str, Any]:
    message = email.message_from_string(item.get("raw_data", ""), policy=default_policy)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    try:
        sent_at = parsedate_to_datetime(message["Date"]).isoformat() if message["Date"] else None
    except (TypeError, ValueError):
        sent_at = None
    recipients = [address for _, address in getaddresses(message.get_all("To", []))]
    if not recipients:  # no To header: the envelope destinations
        recipients = list(dict.fromkeys(item.get("destinations") or []))
    return {"id": item.get("id"), "source": item.get("source") or str(message.get("From", "")),
            "to": ", ".join(recipients), "subject": str(message.get("Subject", "")),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "", "sent_at": sent_at}


def _from_simple(item: dict) -> dict[str, Any]:
    body = item.get("body") or ""
    is_html = body.lstrip().startswith("<")
    destinations = item.get("destinations") or {}
    return {"id": item.get("id"), "source": item.get("source"), "to": ", ".join(destinations.get("ToAddresses", [])),
            "subject": item.get("subject") or "", "text": "" if is_html else body, "html": body if is_html else "",
            "sent_at": None}


def sent_emails(to: str | None = None, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Emails SES sent on the emulator, oldest first: dicts of id, source, to (addresses, comma
    separated), subject, text, html and sent_at (ISO 8601, None when unknown); only those to `to` if given."""
    ses = _model_data(endpoint or _endpoint()).get("ses", {})
    emails = [_from_raw(item) for item in ses.get("RawMessage", [])]
    emails += [_from_simple(item) for item in ses.get("Message", [])]
    emails.sort(key=lambda mail: (mail["sent_at"] is None, mail["sent_at"] or ""))
    if to:
        wanted = to.strip().lower()
        emails = [mail for mail in emails if wanted in (a.strip().lower() for a in mail["to"].split(","))]
    return emails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.pipeline.mailbox",
                                     description="List the emails the local AWS emulator's SES has sent.")
    parser.add_argument("--to", help="only emails to this address")
    parser.add_argument("--last", type=int, default=0, help="only the last N emails")
    parser.add_argument("--html", action="store_true", help="print the HTML part too")
    parser.add_argument("--json", action="store_true", help="print them as JSON")
    args = parser.parse_args(argv)
    try:
        emails = sent_emails(args.to)
    except (RuntimeError, OSError) as err:
        print(f"cannot read the emulator's mailbox: {err}", file=sys.stderr)
        return 1
    if args.last > 0:
        emails = emails[-args.last:]
    if args.json:
        print(json.dumps(emails, ensure_ascii=False, indent=2))
        return 0
    if not emails:
        print("no emails" + (f" to {args.to}" if args.to else ""))
    for mail in emails:
        print("=" * 72)
        print(f"To:      {mail['to']}\nFrom:    {mail['source']}\nSubject: {mail['subject']}\n"
              f"Sent:    {mail['sent_at'] or '-'}\n")
        print(mail["text"] or "(no text part)")
        if args.html:
            print("-" * 30 + " HTML " + "-" * 30)
            print(mail["html"] or "(no HTML part)")
    print(f"{len(emails)} email(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
