"""The Gmail client against the sandbox over real HTTP: paging, tokens, faults, attachments."""

from __future__ import annotations

import os
import time

import pytest
from gmail_support import GmailSandbox
from zakaz_common.errors import AuthError, ConfigError, PermanentError, TransientError
from zakaz_gmail.client import GmailClient, MessageGone
from zakaz_gmail.settings import get_settings


def _client() -> GmailClient:
    return GmailClient(get_settings())


def test_paging_returns_every_id_once_newest_first(
    gmail_env: GmailSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_PAGE_SIZE", "3")
    expected = [m["id"] for m in gmail_env.truth("from:qtickets")]

    with _client() as client:
        ids = list(client.message_ids("from:qtickets"))
        pages = client.stats.requests["list"]

    assert ids == expected
    assert pages == -(-len(expected) // 3) > 1
    assert all("maxResults=3" in e["query"] for e in gmail_env.log() if e["kind"] == "list")


def test_a_search_matching_nothing_yields_nothing(gmail_env: GmailSandbox) -> None:
    with _client() as client:
        assert list(client.message_ids("from:nobody@example.org")) == []


def test_a_message_comes_with_its_csv_body_but_not_its_excel_one(gmail_env: GmailSandbox) -> None:
    truth = gmail_env.truth("from:qtickets")
    excel = next(m for m in truth if m["kind"] == "xlsx")
    csv = next(m for m in truth if m["kind"] == "csv" and m["bad_rows"] == 0)

    with _client() as client:
        spreadsheet = client.message(excel["id"])
        report = client.message(csv["id"])

    [xlsx] = [p for p in spreadsheet.parts if p.kind == "spreadsheet"]
    assert xlsx.data is None and xlsx.attachment_id and xlsx.filename == excel["attachments"][0]
    [attached] = [p for p in report.parts if p.kind == "csv"]
    assert attached.data is not None and attached.data.decode("cp1251").startswith("Дата;ID")
    assert report.internal_date_ms == csv["internal_date"]
    attachment_calls = [e["path"] for e in gmail_env.log() if e["kind"] == "attachment"]
    assert all(excel["id"] not in path for path in attachment_calls)
    assert len(attachment_calls) <= 1  # one CSV, unless Gmail inlined it


def test_an_expired_access_token_is_refreshed_and_written_back_with_mode_600(
    gmail_env: GmailSandbox,
) -> None:
    before = gmail_env.token_file()
    gmail_env.control("google/expire-access-tokens")

    with _client() as client:
        assert list(client.message_ids("from:qtickets"))
        refreshes = client.token.refreshes

    after = gmail_env.token_file()
    assert refreshes == 1
    assert after["token"] != before["token"]
    assert after["expiry"] > before["expiry"]
    # The file's own token endpoint served the refresh (the sandbox, not Google).
    assert after["token_uri"] == before["token_uri"] == f"{gmail_env.base_url}/token"
    assert gmail_env.get("google/stats")["token_requests"] == {"refresh_token": 1}
    assert after["refresh_token"] == before["refresh_token"]
    assert after["client_secret"] == before["client_secret"]
    mode = os.stat(gmail_env.gmail_dir / "token.json").st_mode & 0o777
    assert mode == 0o600
    statuses = [e["status"] for e in gmail_env.log()]
    assert statuses[:2] == [401, 200]


def test_a_token_already_expired_in_the_file_is_refreshed_before_the_first_call(
    gmail_env: GmailSandbox,
) -> None:
    gmail_env.write_gmail_dir(expired=True)
    gmail_env.control("google/expire-access-tokens")

    with _client() as client:
        list(client.message_ids("from:qtickets"))
        assert client.token.refreshes == 1

    assert 401 not in [e["status"] for e in gmail_env.log()]


def test_a_rate_limit_storm_is_waited_out_honouring_retry_after(
    gmail_env: GmailSandbox,
) -> None:
    gmail_env.control("gmail/faults", {"rate_limit": 2, "retry_after": 0.3})

    started = time.monotonic()
    with _client() as client:
        ids = list(client.message_ids("from:qtickets"))
        stats = client.stats

    assert time.monotonic() - started >= 0.6
    assert len(ids) == len(gmail_env.truth("from:qtickets"))
    assert (stats.throttled, stats.retries) == (2, 2)
    assert stats.backoff_seconds >= 0.6
    assert [e["status"] for e in gmail_env.log()][:3] == [429, 429, 200]


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        pytest.param({"forbidden_rate": 2}, 403, id="403_user_rate_limit"),
        pytest.param({"server_errors": 2}, 503, id="503_backend_error"),
    ],
)
def test_transient_answers_are_retried(
    gmail_env: GmailSandbox, fault: dict[str, int], status: int
) -> None:
    gmail_env.control("gmail/faults", fault)

    with _client() as client:
        assert list(client.message_ids("from:qtickets"))
        assert client.stats.retries == 2

    assert [e["status"] for e in gmail_env.log()][:3] == [status, status, 200]


def test_a_rate_limit_that_outlasts_the_attempts_fails_as_transient(
    gmail_env: GmailSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_RETRY_ATTEMPTS", "3")
    gmail_env.control("gmail/faults", {"rate_limit": -1})

    with _client() as client, pytest.raises(TransientError, match="rate limit") as caught:
        list(client.message_ids("from:qtickets"))

    assert "rateLimitExceeded" in str(caught.value)
    assert len(gmail_env.log()) == 3


def test_the_per_user_quota_answers_429(
    gmail_env: GmailSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_RETRY_ATTEMPTS", "2")
    gmail_env.control("gmail/quota", {"units_per_minute": 10})  # two calls a minute

    with _client() as client:
        ids = list(client.message_ids("from:qtickets"))
        client.message(ids[0])
        with pytest.raises(TransientError, match="429"):
            client.message(ids[1])


def test_a_deleted_message_is_gone(gmail_env: GmailSandbox) -> None:
    victim = gmail_env.truth()[0]["id"]
    gmail_env.control("gmail/messages/delete", {"ids": [victim]})

    with _client() as client:
        assert victim not in list(client.message_ids("from:qtickets"))
        with pytest.raises(MessageGone):
            client.message(victim)


def test_a_revoked_refresh_token_is_an_auth_error_with_the_fix(gmail_env: GmailSandbox) -> None:
    before = (gmail_env.gmail_dir / "token.json").read_text()
    gmail_env.control("gmail/revoke")

    with _client() as client, pytest.raises(AuthError) as caught:
        list(client.message_ids("from:qtickets"))

    text = str(caught.value)
    assert "invalid_grant" in text and "zakaz gmail-auth" in text and "In production" in text
    assert (gmail_env.gmail_dir / "token.json").read_text() == before


def test_a_bad_query_is_permanent(gmail_env: GmailSandbox) -> None:
    # The sandbox refuses a page token it never issued, as Gmail does.
    with _client() as client, pytest.raises(PermanentError, match="400"):
        client._get("list", "/gmail/v1/users/me/messages", {"pageToken": "nope"})


def test_a_missing_token_file_says_how_to_create_it(
    gmail_env: GmailSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_DIR", str(gmail_env.gmail_dir / "nowhere"))

    with pytest.raises(ConfigError, match="run `zakaz gmail-auth` once"):
        _client()


def test_an_unreachable_gmail_is_transient(
    gmail_env: GmailSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GMAIL_RETRY_ATTEMPTS", "2")

    with _client() as client, pytest.raises(TransientError, match="cannot reach Gmail"):
        list(client.message_ids("from:qtickets"))
