"""The access log without query strings: a portal link's token, an enrolment link's token
and report filters travel in them, and a log is no place for any of those."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class QueryDropped(logging.Filter):
    """Cuts the query string off the path of uvicorn's access-log records
    (`'%s - "%s %s HTTP/%s" %d'`: client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger, once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, QueryDropped) for f in logger.filters):
        logger.addFilter(QueryDropped())
