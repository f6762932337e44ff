"""QTickets REST API v1 client: events, paid orders and seat maps as plain records.

The API's quirks (shared/upstream-apis.md §1): filters, paging and field selection go in a JSON
body on GET (query strings are silently ignored), `POST /orders` creates orders (so this client
only ever sends GET), pages end at `paging.total` or a short page. Buyers' PII is dropped here,
before any other module sees a record (`privacy`): orders keep only whitelisted fields. Every
request (seat maps too) is retried under `RETRY` and bounded by the run's `Deadline`: it never
waits longer than the time left, and no retry starts after it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx
import orjson
from tenacity import RetryCallState
from zakaz_common.deadline import Deadline
from zakaz_common.errors import AuthError, PermanentError, StructuralError, TransientError
from zakaz_common.pagemarks import PageHistory, PageMark, digest
from zakaz_common.redact import scrub
from zakaz_common.retry import RetryPolicy

from zakaz_qtickets_api.privacy import safe_event, safe_order, safe_value
from zakaz_qtickets_api.settings import QticketsSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What strips a record to the fields this source may keep (`privacy.safe_order`, …).
SafeRecord = Callable[[Mapping[str, Any]], dict[str, Any]]

#: Rows per page asked for; the server may answer with its own size, `paging` tells which.
PER_PAGE: Final = 100
#: Attempts per request on 429/5xx/timeouts before the run gives up (RQ retries it later).
ATTEMPTS: Final = 4
#: Seconds QTickets may stay silent on one request (a page of 100 orders comes in well under).
READ_TIMEOUT: Final = 30.0
#: Seconds to open a connection to QTickets.
CONNECT_TIMEOUT: Final = 5.0
#: The longest Retry-After honoured; a longer wait is better left to the next scheduled run.
MAX_RETRY_AFTER: Final = 60.0
#: Pages smaller than this are decoded in Python even when the engine could read them (the
#: last, short page; error bodies): not worth a trip, and the end of paging is read exactly.
RAW_MIN_BYTES: Final = 4096
#: A ceiling on pages per listing, far above any organiser's volume: a server that never ends
#: paging must not keep a run alive for ever.
MAX_PAGES: Final = 10_000

#: Order fields asked for: what a sale needs, nothing about the buyer.
ORDER_FIELDS: Final = (
    "id",
    "payed",
    "payed_at",
    "deleted_at",
    "updated_at",
    "event_id",
    "utm",
    "baskets.id",
    "baskets.show_id",
    "baskets.price",
    "baskets.quantity",
    "baskets.deleted_at",
    "baskets.refunded_at",
)
#: Event fields asked for (the full list is ~130 kB per event with scheme properties inlined).
EVENT_FIELDS: Final = (
    "id",
    "name",
    "is_active",
    "deleted_at",
    "city.name",
    "shows.id",
    "shows.start_date",
    "shows.is_active",
    "shows.deleted_at",
)
#: Seat fields asked for; without `select` and `flat` the API returns zones without counters.
SEAT_FIELDS: Final = (
    "id",
    "admission",
    "max_quantity",
    "free_quantity",
    "payed_quantity",
    "in_basket_quantity",
    "available",
    "disabled",
)

#: 408/425/429, 5xx, timeouts and broken bodies: exponential from a quarter second, at least
#: what `Retry-After` asks, never more than `MAX_RETRY_AFTER`.
RETRY: Final = RetryPolicy(
    attempts=ATTEMPTS, base=0.25, max_wait=MAX_RETRY_AFTER, honour=("Retry-After",)
)


class NotFoundError(PermanentError):
    """The API answered 404 `RESOURCE_NOT_FOUND` for one resource."""


class QticketsClient:
    """A session with the QTickets REST API v1 (a context manager)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = READ_TIMEOUT,
        attempts: int = ATTEMPTS,
        connect_timeout: float = CONNECT_TIMEOUT,
        deadline: Deadline | None = None,
    ) -> None:
        """Talk to `base_url` (…/api/rest/v1) with the organiser's token, within `deadline`."""
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self.retry = replace(RETRY, attempts=attempts)
        self.deadline = deadline or Deadline.unbounded()
        headers = {"Accept": "application/json", "Cache-Control": "no-cache"}
        if token.strip():
            headers["Authorization"] = f"Bearer {token.strip()}"
        self._http = httpx.Client(
            base_url=self._base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, connect_timeout)),
            follow_redirects=False,
        )
        #: Requests sent and retries made, for the run's metrics.
        self.stats: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: QticketsSettings, deadline: Deadline | None = None
    ) -> QticketsClient:
        """A client for the configured API (ConfigError when the URL or token is missing)."""
        base_url, token = settings.credentials()
        return cls(
            base_url,
            token,
            timeout=settings.timeout_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            deadline=deadline,
        )

    def __enter__(self) -> QticketsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- resources -------------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event with its shows (only the fields this source uses)."""
        body = {"select": list(EVENT_FIELDS), "orderBy": {"id": "asc"}}
        for page in self._listing("events", body, safe_event, PageHistory()):
            yield from page.records or ()

    def orders(self, paid_from: datetime, paid_before: datetime) -> Iterator[dict[str, Any]]:
        """Paid orders with `paid_from <= payed_at < paid_before`, buyers' PII removed.

        The server may ignore the filters (undocumented for orders): callers re-check them.
        """
        for page in self.order_pages(paid_from, paid_before):
            yield from page.records or ()

    def order_pages(
        self,
        paid_from: datetime,
        paid_before: datetime,
        history: PageHistory | None = None,
        *,
        raw: bool = False,
    ) -> Iterator[Page]:
        """Pages of `orders(…)`; a page whose bytes `history` already knows is not decoded, and
        with `raw` full pages are left as bytes for the engine to read."""
        body = _orders_request(paid_from, paid_before)
        yield from self._listing("orders", body, safe_order, history or PageHistory(), raw=raw)

    def order_page(self, paid_from: datetime, paid_before: datetime, number: int) -> Page:
        """Page `number` of `order_pages(…)` once more, decoded."""
        request = {**_orders_request(paid_from, paid_before), "page": number, "perPage": PER_PAGE}
        return self._retrying(
            "orders",
            partial(self._page, "orders", number, request, safe_order, PageHistory(), False),
        )

    def seats(self, show_id: str) -> list[dict[str, Any]]:
        """Every seat (or general-admission zone) of a show with its counters."""
        path = f"shows/{show_id}/seats"
        payload = self._call(path, {"select": list(SEAT_FIELDS), "flat": True})
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict):
            seats = list(data.values())
        elif isinstance(data, list):
            seats = data
        else:
            raise StructuralError(f"QTickets seats of show {show_id}: no seat list in the answer")
        if not all(isinstance(s, dict) for s in seats):
            raise StructuralError(f"QTickets seats of show {show_id}: a seat is not an object")
        return [{k: safe_value(s.get(k)) for k in SEAT_FIELDS if k in s} for s in seats]

    # -- transport -------------------------------------------------------------------------------

    def _listing(
        self,
        path: str,
        body: Mapping[str, Any],
        safe: SafeRecord,
        history: PageHistory,
        *,
        raw: bool = False,
    ) -> Iterator[Page]:
        seen: set[str] = set()
        received = 0
        number = 1
        while True:
            request = {**body, "page": number, "perPage": PER_PAGE}
            page = self._retrying(
                path, partial(self._page, path, number, request, safe, history, raw)
            )
            if page.records is not None:
                fresh = [item for item in page.records if _ident(item) not in seen]
                if page.records and not fresh:
                    raise StructuralError(
                        f"QTickets sent page {number} of /{path} with only rows already "
                        "received: paging goes round in a loop; stopped"
                    )
                seen.update(_ident(item) for item in fresh)
                received += len(fresh)
                yield replace(page, records=fresh)
            else:
                received += page.rows
                yield page
            if not page.rows or page.rows < page.per_page or number * page.per_page >= page.total:
                if received < page.total:
                    log.warning(
                        "QTickets /%s ended after %d of %d rows (rows vanished while paging?)",
                        path,
                        received,
                        page.total,
                    )
                return
            if number >= MAX_PAGES:
                raise StructuralError(f"QTickets /{path} has more than {MAX_PAGES} pages; stopped")
            number += 1

    def _page(
        self,
        path: str,
        number: int,
        body: Mapping[str, Any],
        safe: SafeRecord,
        history: PageHistory,
        raw: bool,
    ) -> Page:
        return read_page(path, number, self._fetch(path, body), safe, history, raw=raw)

    def _call(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._retrying(path, lambda: _decode(self._fetch(path, body), path))

    def _retrying(self, path: str, attempt: Callable[[], T]) -> T:
        return self.retry.call(
            self.deadline, f"reading QTickets /{path}", attempt, before_sleep=self._note_retry
        )

    def _fetch(self, path: str, body: Mapping[str, Any]) -> bytes:
        timeout = self.deadline.http_timeout(
            connect=self._connect_timeout, read=self._timeout, what=f"reading QTickets /{path}"
        )
        self.stats["requests"] += 1
        try:
            # A GET with a JSON body: httpx.get() has no json=, and the API reads only the body.
            response = self._http.request("GET", path, json=dict(body), timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"QTickets did not answer GET /{path} within {timeout.read:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"QTickets is unreachable at {self._base_url} ({type(exc).__name__})"
            ) from exc
        return _classify(response, path, self._base_url)

    def _note_retry(self, state: RetryCallState) -> None:
        self.stats["retries"] += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "QTickets attempt %d failed (%s); retrying in %.1f s", state.attempt_number, exc, wait
        )


def _orders_request(paid_from: datetime, paid_before: datetime) -> dict[str, Any]:
    return {
        "select": list(ORDER_FIELDS),
        "where": [
            {"column": "payed", "value": 1},
            {"column": "payed_at", "operator": ">=", "value": paid_from.isoformat()},
            {"column": "payed_at", "operator": "<", "value": paid_before.isoformat()},
        ],
        # Ascending ids keep pages stable while new orders arrive at the end.
        "orderBy": {"id": "asc"},
    }


@dataclass(frozen=True)
class Page:
    """One page of a listing, as received."""

    number: int
    #: The digest of the page's bytes (`zakaz_common.pagemarks.digest`).
    digest: str
    #: Rows on the page, its size and the listing's total, as `paging` says.
    rows: int
    per_page: int
    total: int
    #: The page's records with PII removed; None when the page was not decoded because the
    #: history knows these exact bytes (`known` is then that run's mark).
    records: list[dict[str, Any]] | None
    known: PageMark | None = None
    #: The page as received, when it was left for the engine to read (`raw=True`).
    body: bytes | None = None


def read_page(
    path: str,
    number: int,
    body: bytes,
    safe: SafeRecord,
    history: PageHistory,
    *,
    raw: bool = False,
) -> Page:
    """A listing page from its bytes: not decoded when `history` knows them, else checked.

    With `raw`, a page whose `paging` can be read from its tail is not decoded either: it is
    kept as bytes for the engine to read (`engine.read_pages`), which checks the paging again.
    """
    page_digest = digest(body)
    known = history.unchanged(number, page_digest)
    if known is not None:
        return Page(number, page_digest, known.rows, known.per_page, known.total, None, known)
    tail = tail_paging(body) if raw and len(body) >= RAW_MIN_BYTES else None
    if tail is not None:
        per_page, total, current = tail
        if current != number:
            raise StructuralError(
                f"QTickets answered page {current} of /{path} when asked for page {number}: "
                "the server ignores paging in the request body; stopped to avoid a loop"
            )
        rows = max(0, min(per_page, total - (number - 1) * per_page))
        return Page(number, page_digest, rows, per_page, total, None, body=body)
    data, paging = _rows_and_paging(_decode(body, path), path)
    current = _int(paging.get("currentPage"), number)
    if current != number:
        raise StructuralError(
            f"QTickets answered page {current} of /{path} when asked for page {number}: "
            "the server ignores paging in the request body; stopped to avoid a loop"
        )
    return Page(
        number,
        page_digest,
        len(data),
        _int(paging.get("perPage"), PER_PAGE),
        _int(paging.get("total"), 0),
        [safe(item) for item in data],
    )


def tail_paging(body: bytes) -> tuple[int, int, int] | None:
    """`(perPage, total, currentPage)` from the `paging` object that ends a page, or None.

    The API writes `paging` after `data`, so it is read from the last bytes without decoding
    the page. Anything unexpected gives None (the page is then decoded as usual); the engine
    reads `paging` again from the whole page and a page that disagrees is decoded by Python.
    """
    at = body.rfind(b'"paging"')
    if at < 0:
        return None
    rest = body[at + len(b'"paging"') :].strip()
    if not rest.startswith(b":") or not rest.endswith(b"}"):
        return None
    try:
        paging = orjson.loads(rest[1:-1])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(paging, dict):
        return None
    per_page, total = _int(paging.get("perPage"), 0), _int(paging.get("total"), -1)
    current = _int(paging.get("currentPage"), 0)
    if per_page < 1 or total < 0 or current < 1:
        return None
    return per_page, total, current


def _decode(body: bytes, path: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TransientError(f"QTickets sent a broken JSON body for GET /{path}") from exc


def _classify(response: httpx.Response, path: str, base_url: str) -> bytes:
    """The body of a good answer, or the right error for a bad one."""
    status = response.status_code
    html = "html" in response.headers.get("content-type", "")
    if status == 200:
        if html:
            raise PermanentError(
                f"QTickets answered GET /{path} with an HTML page, not JSON: QTICKETS_BASE_URL "
                f"({base_url}) must be the REST API root ending in /api/rest/v1"
            )
        return response.content
    detail = _error_detail(response)
    if status in {401, 403}:
        raise AuthError(
            f"QTickets refused the token ({status} {detail}): set QTICKETS_TOKEN to a valid API "
            "token from the seller cabinet (Настройки → Основное)"
        )
    if status == 404 and html:
        raise PermanentError(
            f"QTickets has no /{path} (HTML 404): QTICKETS_BASE_URL ({base_url}) must be the "
            "REST API root ending in /api/rest/v1"
        )
    if status == 404:
        raise NotFoundError(f"QTickets: /{path} not found ({detail})")
    if status in {408, 425, 429} or status >= 500:
        raise TransientError(
            f"QTickets answered {status} to GET /{path} ({detail})",
            retry_after=RETRY.asked(response.headers),
        )
    raise PermanentError(f"QTickets rejected GET /{path}: {status} {detail}")


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no JSON body"
    if isinstance(body, dict):
        text = " ".join(str(body[k]) for k in ("code", "error") if body.get(k))
        return scrub(text)[:200] or "no error text"
    return "no error text"


def _rows_and_paging(payload: Any, path: str) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise StructuralError(f"QTickets /{path}: the answer has no `data` list")
    data = payload["data"]
    if not all(isinstance(item, dict) for item in data):
        raise StructuralError(f"QTickets /{path}: a row of `data` is not an object")
    paging = payload.get("paging")
    return data, paging if isinstance(paging, dict) else {}


def _ident(item: Mapping[str, Any]) -> str:
    return repr(item.get("id"))


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
