"""The one structlog configuration: JSON lines through orjson for journald, a console view on a TTY."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Literal, TextIO

import orjson
import structlog

LogFormat = Literal["auto", "json", "console"]
LEVELS = ("debug", "info", "warning", "error")


def configure(level: str = "info", log_format: LogFormat = "auto", stream: TextIO = sys.stdout) -> None:
    """Configure structlog once per process; events go to `stream` (stdout for the daemon)."""
    use_console = log_format == "console" or (log_format == "auto" and stream.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors: list[structlog.typing.Processor]
    factory: Callable[..., structlog.typing.WrappedLogger]
    if use_console:
        processors = [*shared, structlog.dev.ConsoleRenderer()]
        factory = structlog.PrintLoggerFactory(stream)
    else:
        processors = [
            *shared,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        factory = structlog.BytesLoggerFactory(stream.buffer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
