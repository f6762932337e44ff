"""Scrubbing PII and secrets from free text and log records."""

from __future__ import annotations

import logging

import pytest
from zakaz_common.redact import RedactingFilter, luhn_valid, scrub


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


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("paid with 2202200000000008 today", id="mir_plain"),
        pytest.param("paid with 4111 1111 1111 1111 today", id="visa_spaced"),
        pytest.param("paid with 5555-5555-5555-4444 today", id="mastercard_dashed"),
        pytest.param("paid with 3782 822463 10005 today", id="amex_4_6_5"),
        pytest.param("paid with 6011000990139424009 today", id="nineteen_digits"),
        pytest.param("paid with 6011 0009 9013 9424 009 today", id="nineteen_grouped"),
        pytest.param("paid with 4276 **** **** 1234 today", id="masked_grouped"),
    ],
)
def test_card_numbers_that_pass_the_luhn_check_are_masked(text: str) -> None:
    assert scrub(text) == "paid with <card> today"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("finished at 1733150000 (unix)", id="unix_seconds"),
        pytest.param("finished at 1733150000123 ms", id="unix_millis_not_luhn"),
        pytest.param("Direct AdId 16004543210 has no link", id="direct_ad_id"),
        pytest.param("VK banner 4111111111111112 spent 10", id="sixteen_digits_not_luhn"),
        pytest.param("campaign 12345678901234567890123 spent 10", id="longer_than_a_card"),
        pytest.param("run 7680dcce2da84116a04181223f8c9bf2 failed", id="hex_run_id"),
    ],
)
def test_numbers_that_are_not_cards_survive(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("0", True), ("18", True)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_the_logging_filter_scrubs_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("zakaz.test.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="zakaz.test.redact"):
        logger.info("order of %s with token=%s", "anna@example.ru", "sekret-token-value")
    assert "anna@example.ru" not in caplog.text
    assert "sekret-token-value" not in caplog.text
    assert "order of" in caplog.text
