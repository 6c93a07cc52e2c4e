"""Structured logs and metrics for the operator: one JSON object per line, in every app and handler.

    setup("reqsys")                            # once per process (app factory, handler, runner); idempotent
    log.info("email sent", extra=fields(envelope, message_id=...))
    with bind(correlation_id=event_id):        # every line inside carries it (context variable)
    emit_metrics("email", processed=9, failed=1, retried=1, oldest_age_ms=1200)

Every line has `timestamp`, `level`, `logger`, `message`, `service`, and whatever is bound or passed as
`extra`: `correlation_id` (the event id: the same on every hop of one event, in reqsys, the queues, the
handlers and childsys), `request_id` (the application's), `aws_request_id` (Lambda's, or the HTTP request's
`X-Request-Id`), `event_type`, `hop`.

Metrics are CloudWatch Embedded Metric Format lines (no API call: CloudWatch Logs turns them into metrics):
namespace METRICS_NAMESPACE, dimensions Stage and Hop, metrics Processed, Failed, Retried (Count) and
OldestMessageAge (Milliseconds). The README lists them for alarms.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

METRICS_NAMESPACE = "Daycare/Pipeline"
METRICS = (("Processed", "Count"), ("Failed", "Count"), ("Retried", "Count"), ("OldestMessageAge", "Milliseconds"))
CONTEXT_FIELDS = ("correlation_id", "request_id", "aws_request_id", "event_type", "hop")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
metrics_log = logging.getLogger("shared.metrics")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line; an `emf` record (metrics) as its EMF document alone."""

    def __init__(self, service: str = ""):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        emf = getattr(record, "emf", None)
        if isinstance(emf, dict):
            return json.dumps(emf, separators=(",", ":"), default=str)
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "service": self.service or os.environ.get("LOG_SERVICE", ""),
        }
        line.update({k: v for k, v in (_context.get() or {}).items() if v not in (None, "")})
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")
                     and v not in (None, "")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(service: str, level: int = logging.INFO, *, install: bool = False) -> None:
    """Write the process's log lines as JSON at INFO: in Lambda (through its own handler, to CloudWatch),
    under `make run` (LOG_JSON=1, to stderr and so to .local/*.log), or when `install` is asked (the runner).

    Elsewhere (tests, benchmarks, scripts) the process's logging is left as it is. Idempotent and cheap:
    called by every app factory and every handler call. LOG_FORMAT=text keeps plain formatters."""
    if not (install or os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("LOG_JSON") == "1"):
        return
    root = logging.getLogger()
    if os.environ.get("LOG_FORMAT") == "text" or getattr(root, "_json_service", None) == service:
        return
    # the plain stream handlers (ours, basicConfig's) and Lambda's own; others (a test's capture) are left alone
    outputs = [h for h in root.handlers
               if type(h) is logging.StreamHandler or type(h).__name__ == "LambdaLoggerHandler"]
    if not outputs:
        outputs = [logging.StreamHandler(sys.stderr)]
        root.addHandler(outputs[0])
    for handler in outputs:
        if not isinstance(handler.formatter, JsonFormatter) or handler.formatter.service != service:
            handler.setFormatter(JsonFormatter(service))
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger("botocore").level))
    root._json_service = service  # type: ignore[attr-defined]


def fields(envelope: Any = None, **extra: Any) -> dict[str, Any]:
    """`extra=` for a log call about an event envelope: its id as the correlation id, its request id, type."""
    found: dict[str, Any] = {}
    if envelope is not None:
        found = {"correlation_id": envelope.event_id, "request_id": envelope.request_id,
                 "event_type": str(envelope.type)}
    found.update({k: v for k, v in extra.items() if v is not None})
    return found


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (this thread or task only)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def push(**values: Any) -> contextvars.Token:
    """`bind` for code that cannot use a with-block (a request's before/teardown hooks); undo with `pop`."""
    return _context.set({**(_context.get() or {}), **{k: v for k, v in values.items() if v not in (None, "")}})


def pop(token: contextvars.Token | None) -> None:
    if token is not None:
        try:
            _context.reset(token)
        except ValueError:  # set in another context (a test client's streamed response): nothing to undo
            pass


def current(name: str) -> Any:
    return (_context.get() or {}).get(name)


def emit_metrics(hop: str, *, processed: int = 0, failed: int = 0, retried: int = 0,
                 oldest_age_ms: float | None = None, stage: str | None = None) -> None:
    """One EMF line with the hop's counts for one batch (INFO on the `shared.metrics` logger)."""
    if not metrics_log.isEnabledFor(logging.INFO):
        return
    values: dict[str, Any] = {"Processed": processed, "Failed": failed, "Retried": retried}
    if oldest_age_ms is not None:
        values["OldestMessageAge"] = max(0, int(oldest_age_ms))
    document = {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": METRICS_NAMESPACE, "Dimensions": [["Stage", "Hop"]],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS if name in values]}]},
        "Stage": stage or os.environ.get("STAGE", "local"), "Hop": hop, **values,
    }
    metrics_log.info("metrics %s", hop, extra={"emf": document})
