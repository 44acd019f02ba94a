"""The access log keeps no query string (tokens of portal and enrolment links travel there)."""

from __future__ import annotations

import logging

import pytest

from consentry.http import logs


def test_the_access_log_drops_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    logs.install()
    logs.install()
    logger = logging.getLogger(logs.ACCESS_LOGGER)
    assert sum(isinstance(f, logs.QueryDropped) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=logs.ACCESS_LOGGER):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/portal?link=secret-token",
            "1.1",
            303,
        )
    assert caplog.records
    text = caplog.records[-1].getMessage()
    assert "secret-token" not in text
    assert '"GET /portal HTTP/1.1" 303' in text
