"""Scrubbing PII and secrets from free text and log records."""

from __future__ import annotations

import logging

import pytest
from zakaz_common.redact import RedactingFilter, scrub


@pytest.mark.parametrize(
    ("text", "leaked", "kept"),
    [
        ("client buyer@example.ru paid", "buyer@example.ru", "paid"),
        ("phone +7 (999) 000-11-22 called", "000-11-22", "called"),
        ("phone 89990001122 called", "89990001122", "called"),
        ("card 220220******6407 ok", "220220******6407", "ok"),
        (
            "Authorization: Bearer y0_AgAAAAB1234567890abcdef",
            "y0_AgAAAAB1234567890abcdef",
            "Authorization",
        ),
        ("url http://etl:s3cr3t@clickhouse:8123/zakaz", "s3cr3t", "clickhouse:8123"),
        ('{"access_token": "vk1.a.abcdef123", "x": 1}', "vk1.a.abcdef123", '"x": 1'),
        ("client_secret=GOCSPX-abc&x=1", "GOCSPX-abc", "x=1"),
    ],
    ids=[
        "email",
        "phone_formatted",
        "phone_plain",
        "masked_card",
        "bearer",
        "dsn_password",
        "json_token",
        "form",
    ],
)
def test_scrub_removes_pii_and_secrets(text: str, leaked: str, kept: str) -> None:
    cleaned = scrub(text)
    assert leaked not in cleaned
    assert kept in cleaned


@pytest.mark.parametrize(
    "text",
    ["sold 1500 tickets for 2 250 000,50 ₽", "event 24089 on 2025-06-03", "order 2051187"],
    ids=["money", "ids_and_dates", "order_id"],
)
def test_scrub_leaves_business_numbers_alone(text: str) -> None:
    assert scrub(text) == text


def test_the_logging_filter_scrubs_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("zakaz.test.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="zakaz.test.redact"):
        logger.info("order of %s with token=%s", "anna@example.ru", "sekret-token-value")
    assert "anna@example.ru" not in caplog.text
    assert "sekret-token-value" not in caplog.text
    assert "order of" in caplog.text
