"""Logging: one JSON object per line (or plain text), scrubbed, request id attached.

Log lines never carry a stack trace unless ``log_tracebacks`` is switched on for development;
an exception is reduced to its type, scrubbed message and innermost module:function:line.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from mnemogate.core.errors import describe_exception, scrub

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mnemogate_request_id", default=None
)

# Attributes every record has, plus uvicorn's ANSI-coloured duplicate of the message.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "request_id",
}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The request id (given, or of the request being served) and the record's ``extra`` fields."""
    fields: dict[str, Any] = {}
    request_id = getattr(record, "request_id", None) or request_id_var.get()
    if request_id:
        fields["request_id"] = request_id
    attributes = record.__dict__
    for key in attributes.keys() - _STANDARD_ATTRS:
        if not key.startswith("_"):
            fields[key] = attributes[key]
    return fields


class JsonFormatter(logging.Formatter):
    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage(), addresses=False),
            **record_fields(record),
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = describe_exception(record.exc_info[1])
            if self.tracebacks:
                entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage(), addresses=False)
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {message}"
        fields = record_fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info and record.exc_info[1] is not None:
            line += f" error={describe_exception(record.exc_info[1])}"
            if self.tracebacks:
                line += "\n" + self.formatException(record.exc_info)
        return line


def make_formatter(fmt: str, tracebacks: bool) -> logging.Formatter:
    return JsonFormatter(tracebacks=tracebacks) if fmt == "json" else TextFormatter(tracebacks=tracebacks)


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes formatted lines in batches: one write per ``interval`` seconds (or per
    ``capacity`` lines) instead of one per record, at once for warnings and errors. Keeps the
    per-request access log off the request path's system calls."""

    def __init__(self, stream: Any, *, interval: float = 0.2, capacity: int = 512) -> None:
        super().__init__(stream)
        self.capacity = capacity
        self.pending: list[str] = []
        self._stopped = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every, args=(interval,), daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held
        try:
            self.pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self.pending) >= self.capacity:
            self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        self._stopped.set()
        super().close()

    def _write(self) -> None:
        if self.pending:
            self.stream.write("".join(self.pending))
            self.pending.clear()
            self.stream.flush()

    def _flush_every(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self.flush()


_HANDLER_MARK = "_mnemogate_handler"


def configure_logging(level: str = "INFO", fmt: str = "json", tracebacks: bool = False) -> None:
    """Route mnemogate's and uvicorn's loggers to stderr through our formatter (idempotent)."""
    # The logging HOWTO's optimisations: our lines never show the caller's file, line, thread
    # or process, so do not collect them for every record.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt, tracebacks))
    setattr(handler, _HANDLER_MARK, True)
    for name in ("mnemogate", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
            logger.removeHandler(old)
            old.close()
        logger.addHandler(handler)
        logger.setLevel(level)
        # mnemogate records also reach root handlers a host application installed (or pytest's
        # capture); the root logger has none in a plain server, so nothing is printed twice.
        logger.propagate = name == "mnemogate"
    # The hardening plugin writes the access log; uvicorn's own would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True


def flush_logs() -> None:
    """Write out log lines still waiting in a batch (at shutdown)."""
    for name in ("mnemogate", "uvicorn"):
        for handler in logging.getLogger(name).handlers:
            handler.flush()
