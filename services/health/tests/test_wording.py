"""Errors as one sentence for people; the raw text never leaks secrets into it."""

from __future__ import annotations

import pytest
from zakaz_health.wording import alert_sentence, explain

REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /api/rest/v1/"
    "orders (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at "
    "0x7f3a>: Failed to establish a new connection: [Errno 111] Connection refused'))"
)


@pytest.mark.parametrize(
    ("name", "message", "sentence"),
    [
        (
            "connection_refused_pool",
            REFUSED,
            "QTickets API could not be reached: the connection failed.",
        ),
        (
            "unreachable_own_words",
            "QTickets is unreachable at http://127.0.0.1:9 (ConnectError)",
            "QTickets API could not be reached: the connection failed.",
        ),
        (
            "read_timeout",
            "HTTPSConnectionPool(host='x', port=443): Read timed out. (read timeout=30)",
            "QTickets API did not answer in time.",
        ),
        (
            "connect_timeout_inside_max_retries",
            "Max retries exceeded with url: / (Caused by ConnectTimeoutError(...))",
            "QTickets API did not answer in time.",
        ),
        (
            "unauthorized",
            "QTickets refused the token (401 Unauthorized): set QTICKETS_TOKEN",
            "QTickets API refused our credentials: check the source's token or key in its settings.",
        ),
        (
            "forbidden",
            "Direct Reports answered HTTP 403: check DIRECT_TOKEN and DIRECT_CLIENT_LOGIN",
            "QTickets API refused our credentials: check the source's token or key in its settings.",
        ),
        (
            "rate_limited",
            "VK Ads answered 429 Too Many Requests",
            "QTickets API limited our requests (rate limit); the next run tries again.",
        ),
        (
            "server_error",
            "QTickets answered 502 to GET /orders (Bad Gateway)",
            "QTickets API had a server error; this usually passes and the next run tries again.",
        ),
        (
            "rows_rejected_not_http_500",
            "500 rows rejected: too many to publish",
            "Too many rows could not be read; see the rejects table.",
        ),
        (
            "abandoned",
            "abandoned: the process running it stopped",
            "The run was interrupted before it finished; the next run starts over.",
        ),
        (
            "interrupted",
            "interrupted by SIGTERM before it finished",
            "The run was interrupted before it finished; the next run starts over.",
        ),
        (
            "lock_lost",
            "the source lock was lost (held by another run)",
            "The run was interrupted before it finished; the next run starts over.",
        ),
        (
            "header_changed",
            "the Sales tab has no header row with date, event_id, city",
            "QTickets API changed its layout (a header or column is missing or renamed); "
            "fix it upstream and run again.",
        ),
        (
            "columns_missing",
            "Direct report lacks the columns Cost (header: 'Date\\tAdId')",
            "QTickets API changed its layout (a header or column is missing or renamed); "
            "fix it upstream and run again.",
        ),
        (
            "stale_alert",
            "QTickets API (qtickets_api): no successful load for 3 h, more than its freshness "
            "budget of 30 min",
            "No fresh data: the last successful load is older than its freshness budget.",
        ),
        (
            "deadline",
            "the run reached its deadline of 10 min",
            "The run reached its time limit before it finished; the next attempt tries again.",
        ),
        (
            "exception_repr",
            "KeyError('sale_date')",
            "The run failed with an unexpected error; the detail is below.",
        ),
        (
            "exception_class_text",
            "ZeroDivisionError: division by zero",
            "The run failed with an unexpected error; the detail is below.",
        ),
        (
            "own_message_first_clause",
            "the spreadsheet has no tab named Sales; share it with the service account",
            "The spreadsheet has no tab named Sales.",
        ),
        ("empty", "", ""),
    ],
)
def test_explain(name: str, message: str, sentence: str) -> None:
    assert explain(message, "QTickets API") == sentence


def test_explain_without_a_title_names_the_upstream() -> None:
    assert explain(REFUSED) == "The upstream could not be reached: the connection failed."


@pytest.mark.parametrize(
    "message",
    [
        "cannot connect to https://user:hunter2pw@api.example/v1 token=abc123secret42",
        "the row of ivan.petrov@example.com +7 912 345-67-89 bearer abcdefgh12345678 was odd",
    ],
)
def test_explain_never_repeats_secrets_or_pii(message: str) -> None:
    said = explain(message)
    for secret in ("hunter2pw", "abc123secret42", "ivan.petrov", "345-67-89", "abcdefgh12345678"):
        assert secret not in said


def test_explain_is_one_sentence_and_short() -> None:
    said = explain("a " * 400)
    assert said.endswith(".") and len(said) <= 161


def test_an_alert_is_explained_by_its_kind_before_its_words() -> None:
    message = "qtickets_api run r1 succeeded without some of its parts: seat maps (HTTP 503)"
    assert alert_sentence("partial", message) == "A run loaded, but some of its parts failed."
    assert alert_sentence("run_failed", "qtickets_api run failed: HTTP 503", "QTickets API") == (
        "QTickets API had a server error; this usually passes and the next run tries again."
    )
