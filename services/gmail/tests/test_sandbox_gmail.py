"""The Gmail sandbox as plain HTTP sees it: Google's paths, bodies, errors and search."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gmail_support import GmailSandbox, sandbox_app
from zakaz_common.testing import serving
from zakaz_common.timeutil import MSK, today_msk
from zakaz_sandbox.google_oauth import SHEETS_READONLY, register_refresh_token

API = "/gmail/v1/users/me/messages"


@pytest.fixture
def token(gmail_env: GmailSandbox) -> str:
    """A live access token of the installed-app grant the sandbox issued."""
    return str(gmail_env.token_file()["token"])


def _get(sandbox: GmailSandbox, path: str, token: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{sandbox.base_url}{path}", params=params, headers=headers, timeout=30)


def _decode(data: str) -> bytes:
    assert "=" not in data  # Gmail drops the padding; clients must add it back
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    return (
        [leaf for child in part["parts"] for leaf in _leaves(child)]
        if part.get("parts")
        else [part]
    )


def test_without_a_token_401_and_with_an_expired_one_401(
    gmail_env: GmailSandbox, token: str
) -> None:
    missing = _get(gmail_env, API, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"

    gmail_env.control("google/expire-access-tokens")
    expired = _get(gmail_env, API, token)

    assert expired.status_code == 401
    error = expired.json()["error"]
    assert error["errors"][0]["reason"] == "authError"
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


def test_a_token_without_a_gmail_scope_is_403(gmail_env: GmailSandbox) -> None:
    grant = register_refresh_token(gmail_env.app, scopes=[SHEETS_READONLY])
    issued = httpx.post(
        f"{gmail_env.base_url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": grant.client_id,
            "client_secret": grant.client_secret,
            "refresh_token": grant.refresh_token,
        },
    ).json()

    response = _get(gmail_env, API, issued["access_token"])

    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def _ids(sandbox: GmailSandbox, token: str, q: str) -> list[str]:
    body = _get(sandbox, API, token, q=q).json()
    return [m["id"] for m in body.get("messages", [])]


def _kinds(sandbox: GmailSandbox, ids: list[str]) -> list[str]:
    kinds = {m["id"]: m["kind"] for m in sandbox.truth()}
    return [kinds[i] for i in ids]


def test_search_operators(gmail_env: GmailSandbox, token: str) -> None:
    today = today_msk()
    every = _ids(gmail_env, token, "")
    qtickets = _ids(gmail_env, token, "from:qtickets")
    week = _ids(gmail_env, token, "from:qtickets newer_than:7d")
    day = today - timedelta(days=12)
    one_day = f"after:{day:%Y/%m/%d} before:{day + timedelta(days=1):%Y/%m/%d}"
    start = int(datetime(day.year, day.month, day.day, tzinfo=MSK).timestamp())

    assert len(every) == len(qtickets) + 1 and len(set(every)) == len(every)
    assert _kinds(gmail_env, _ids(gmail_env, token, "-from:qtickets")) == ["foreign"]
    week_ago = (time.time() - 7 * 86_400) * 1000
    truth = {m["id"]: m for m in gmail_env.truth()}
    assert set(week) == {i for i in qtickets if truth[i]["internal_date"] > week_ago}
    assert 0 < len(week) < len(qtickets)
    assert _kinds(gmail_env, _ids(gmail_env, token, "has:attachment filename:xlsx")) == ["xlsx"]
    assert _kinds(gmail_env, _ids(gmail_env, token, "subject:Исправленный")) == ["html"]
    assert _ids(gmail_env, token, one_day) == _ids(
        gmail_env, token, f"after:{start - 1} before:{start + 86_400}"
    )
    assert len(_ids(gmail_env, token, one_day)) == 1
    assert _ids(gmail_env, token, "older_than:30d") == []


def test_nothing_found_has_no_messages_key(gmail_env: GmailSandbox, token: str) -> None:
    body = _get(gmail_env, API, token, q="from:nobody@example.org").json()

    assert body == {"resultSizeEstimate": 0}


def test_paging_with_opaque_tokens(gmail_env: GmailSandbox, token: str) -> None:
    first = _get(gmail_env, API, token, q="from:qtickets", maxResults=5).json()
    second = _get(
        gmail_env, API, token, q="from:qtickets", maxResults=5, pageToken=first["nextPageToken"]
    ).json()

    assert len(first["messages"]) == 5 and first["nextPageToken"].isdigit()
    assert len(first["nextPageToken"]) == 20
    assert not {m["id"] for m in first["messages"]} & {m["id"] for m in second["messages"]}
    bad = _get(gmail_env, API, token, q="from:qtickets", pageToken="123")
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "Invalid pageToken"
    capped = _get(gmail_env, API, token, maxResults=1000).json()
    assert "nextPageToken" not in capped


def test_a_full_html_report_nests_its_table_three_levels_down(
    gmail_env: GmailSandbox, token: str
) -> None:
    report = next(m for m in gmail_env.truth() if m["kind"] == "html")

    body = _get(gmail_env, f"{API}/{report['id']}", token, format="full").json()

    assert body["internalDate"] == str(report["internal_date"])
    payload = body["payload"]
    assert payload["mimeType"] == "multipart/mixed"
    headers = {h["name"]: h["value"] for h in payload["headers"]}
    assert headers["From"] == "Qtickets <reports@qtickets.ru>"
    leaves = _leaves(payload)
    assert [leaf["mimeType"] for leaf in leaves] == ["text/plain", "text/html", "image/png"]
    assert [leaf["partId"] for leaf in leaves] == ["0.0", "0.1.0", "0.1.1"]
    html = _decode(leaves[1]["body"]["data"]).decode()
    assert "<th>ID мероприятия</th>" in html and "&nbsp;₽" in html and "Итого" in html
    minimal = _get(gmail_env, f"{API}/{report['id']}", token, format="minimal").json()
    assert "payload" not in minimal
    metadata = _get(
        gmail_env, f"{API}/{report['id']}", token, format="metadata", metadataHeaders="Subject"
    ).json()
    assert [h["name"] for h in metadata["payload"]["headers"]] == ["Subject"]


def test_attachments_cp1251_csv_and_a_real_xlsx(gmail_env: GmailSandbox, token: str) -> None:
    truth = gmail_env.truth()

    def attachment(kind: str) -> bytes:
        message = next(m for m in truth if m["kind"] == kind and m["bad_rows"] == 0)
        body = _get(gmail_env, f"{API}/{message['id']}", token).json()
        leaf = next(leaf for leaf in _leaves(body["payload"]) if leaf["filename"])
        if "data" in leaf["body"]:
            return _decode(leaf["body"]["data"])
        path = f"{API}/{message['id']}/attachments/{leaf['body']['attachmentId']}"
        answer = _get(gmail_env, path, token).json()
        assert answer["size"] == leaf["body"]["size"]
        return _decode(answer["data"])

    csv_text = attachment("csv").decode("cp1251")
    assert csv_text.startswith("Дата;ID мероприятия;Название;Город;Продано билетов;Выручка")
    assert "\r\n" in csv_text and "," in csv_text.splitlines()[1]
    with zipfile.ZipFile(io.BytesIO(attachment("xlsx"))) as workbook:
        assert "xl/worksheets/sheet1.xml" in workbook.namelist()
        assert "ID мероприятия" in workbook.read("xl/worksheets/sheet1.xml").decode()


def test_unknown_message_and_attachment(gmail_env: GmailSandbox, token: str) -> None:
    missing = _get(gmail_env, f"{API}/0000000000000000", token)
    assert missing.status_code == 404
    assert missing.json()["error"]["errors"][0]["reason"] == "notFound"
    some = gmail_env.truth()[0]["id"]
    assert _get(gmail_env, f"{API}/{some}/attachments/nope", token).status_code == 400


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        pytest.param({"rate_limit": 1, "retry_after": 2}, 429, "rateLimitExceeded", id="429"),
        pytest.param({"forbidden_rate": 1}, 403, "userRateLimitExceeded", id="403_rate"),
        pytest.param({"server_errors": 1}, 503, "backendError", id="503"),
    ],
)
def test_faults_answer_as_gmail(
    gmail_env: GmailSandbox, token: str, fault: dict[str, Any], status: int, reason: str
) -> None:
    gmail_env.control("gmail/faults", fault)

    failed = _get(gmail_env, API, token)
    after = _get(gmail_env, API, token)

    assert failed.status_code == status
    assert failed.json()["error"]["errors"][0]["reason"] == reason
    if "retry_after" in fault:
        assert failed.headers["retry-after"] == "2"
        assert failed.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert after.status_code == 200


def test_the_quota_counts_five_units_a_call(gmail_env: GmailSandbox, token: str) -> None:
    gmail_env.control("gmail/quota", {"units_per_minute": 15})

    statuses = [_get(gmail_env, API, token).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_a_delivered_message_is_listed_first_with_its_truth(
    gmail_env: GmailSandbox, token: str
) -> None:
    day = today_msk() - timedelta(days=1)
    rows = [{"event_id": 24081, "tickets_sold": 2, "revenue": "4400.50"}]

    added = gmail_env.control(
        "gmail/messages", {"kind": "csv", "sale_date": day.isoformat(), "rows": rows}
    )

    assert _ids(gmail_env, token, "from:qtickets")[0] == added["id"]
    assert added["sales"] == [
        {
            "sale_date": day.isoformat(),
            "event_id": "24081",
            "tickets_sold": 2,
            "revenue": "4400.50",
            "event_name": "Стендап: Большой сольный концерт",
            "city": "санкт-петербург",
        }
    ]
    bad = httpx.post(
        f"{gmail_env.base_url}/_sandbox/gmail/messages",
        json={"kind": "csv", "sale_date": day.isoformat(), "rows": [{"event_id": 1}]},
    )
    assert bad.status_code == 422


def test_oauth_files_look_like_googles_and_revoking_gives_invalid_grant(
    sandbox: GmailSandbox, tmp_path: Path
) -> None:
    sandbox.gmail_dir = tmp_path / "g"
    sandbox.write_gmail_dir()
    token = sandbox.token_file()
    client = json.loads((sandbox.gmail_dir / "credentials.json").read_text())["installed"]

    assert set(token) == {
        "token",
        "refresh_token",
        "token_uri",
        "client_id",
        "client_secret",
        "scopes",
        "universe_domain",
        "account",
        "expiry",
    }
    assert token["refresh_token"].startswith("1//0g") and token["token"].startswith("ya29.")
    assert token["client_id"].endswith(".apps.googleusercontent.com")
    assert client["token_uri"] == token["token_uri"] == f"{sandbox.base_url}/token"
    for name in ("token.json", "credentials.json"):
        assert (sandbox.gmail_dir / name).stat().st_mode & 0o777 == 0o600

    form = {
        "grant_type": "refresh_token",
        "client_id": token["client_id"],
        "client_secret": token["client_secret"],
        "refresh_token": token["refresh_token"],
    }
    assert httpx.post(token["token_uri"], data=form).status_code == 200
    assert sandbox.control("gmail/revoke") == {"revoked": 1, "expired_access_tokens": 2}
    refused = httpx.post(token["token_uri"], data=form)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_a_mailbox_for_a_given_day_is_reproducible() -> None:
    day = date(2025, 6, 10)
    bodies = []
    for _ in range(2):
        with serving(sandbox_app(day)) as base_url:
            bodies.append(httpx.get(f"{base_url}/_sandbox/gmail/truth").json())
    assert bodies[0] == bodies[1]
    newest = bodies[0]["messages"][0]
    assert newest["received_at"].startswith("2025-06-09T23:50")
