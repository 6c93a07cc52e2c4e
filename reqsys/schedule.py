"""The offer deadline schedule of reqsys (a Zappa `expression` event, rate(10 minutes); see reqsys.offers):
expires unanswered offers and sends the reminders before their deadline."""

from reqsys import create_app
from shared.platform.db import scheduled_job


def _run():
    from reqsys.offers import run_deadlines

    return run_deadlines()


handler = scheduled_job(create_app, _run)
