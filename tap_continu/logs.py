"""Logging filter that keeps query strings, which hold emails, out of request logs."""

from __future__ import annotations

import logging
import re

# At DEBUG, urllib3 logs every request line with its query string, which contains the emails
# of a completion batch.
REQUEST_LOGGERS = ("urllib3.connectionpool",)

_QUERY = re.compile(r"\?[^\s\"']*")


class QueryStringRedactor(logging.Filter):
    """Replace every query string in a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact `record` in place and let it through."""
        if isinstance(record.msg, str):
            record.msg = _QUERY.sub("?<redacted>", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY.sub("?<redacted>", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_request_logs() -> None:
    """Attach the redactor to the HTTP client's loggers, once per process."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringRedactor) for f in logger.filters):
            logger.addFilter(QueryStringRedactor())
