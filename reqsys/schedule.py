"""The offer deadline schedule of reqsys (a Zappa `expression` event, rate(10 minutes); see reqsys.offers):
expires unanswered offers and sends the reminders before their deadline."""

from shared.db import scheduled_job


def _run():
    from reqsys.offers import run_deadlines

    return run_deadlines()


handler = scheduled_job("reqsys", _run)
