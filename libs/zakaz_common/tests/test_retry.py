"""The one retry policy: what it retries, how long it waits, where it stops."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from zakaz_common.deadline import Deadline, DeadlineExceeded
from zakaz_common.errors import AuthError, PermanentError, TransientError
from zakaz_common.retry import RetryPolicy


@dataclass
class Upstream:
    """Fails with `errors` in turn (the last one for ever), counting attempts."""

    errors: list[BaseException | None]
    calls: int = 0

    def __call__(self) -> str:
        self.calls += 1
        error = self.errors[min(self.calls, len(self.errors)) - 1]
        if error is None:
            return "ok"
        raise error


@dataclass
class Sleeps:
    """The sleep the policy is given: records each wait, and really sleeps when `real`."""

    real: bool = False
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.real:
            time.sleep(seconds)


class Refused(Exception):
    """A third-party error carrying its response (as gspread's `APIError` does)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def run(
    policy: RetryPolicy,
    upstream: Callable[[], str],
    deadline: Deadline | None = None,
    sleeps: Sleeps | None = None,
) -> Sleeps:
    """`upstream` under `policy`; a deadline makes the sleeps real (it runs on real time)."""
    sleeps = sleeps if sleeps is not None else Sleeps(real=deadline is not None)
    policy.call(deadline or Deadline.unbounded(), "testing", upstream, sleep=sleeps)
    return sleeps


def test_transient_errors_are_retried_until_one_succeeds() -> None:
    upstream = Upstream([TransientError("503"), TransientError("503"), None])
    sleeps = Sleeps()

    result = RetryPolicy(attempts=5, base=0.5, jitter=0.0).call(
        Deadline.unbounded(), "testing", upstream, sleep=sleeps
    )

    assert (result, upstream.calls, sleeps.waits) == ("ok", 3, [0.5, 1.0])


@pytest.mark.parametrize(
    "error",
    [PermanentError("400"), AuthError("401"), DeadlineExceeded("spent"), ValueError("bug")],
    ids=["permanent", "auth", "deadline", "not_ours"],
)
def test_what_is_not_transient_is_raised_at_once(error: Exception) -> None:
    upstream = Upstream([error])
    sleeps = Sleeps()

    with pytest.raises(type(error)) as raised:
        RetryPolicy().call(Deadline.unbounded(), "testing", upstream, sleep=sleeps)

    assert raised.value is error
    assert (upstream.calls, sleeps.waits) == (1, [])


def test_attempts_are_bounded_and_the_last_error_is_raised_as_it_was() -> None:
    errors: list[BaseException | None] = [TransientError(f"503 number {n}") for n in range(1, 10)]
    upstream = Upstream(errors)

    with pytest.raises(TransientError, match=r"^503 number 4$"):
        run(RetryPolicy(attempts=4, base=0.0), upstream)

    assert upstream.calls == 4


def test_the_wait_is_never_less_than_what_the_upstream_asked() -> None:
    upstream = Upstream([TransientError("429", retry_after=0.7), None])

    sleeps = run(RetryPolicy(base=0.01), upstream)

    assert sleeps.waits == [0.7]


def test_a_backoff_longer_than_what_was_asked_is_kept() -> None:
    upstream = Upstream([TransientError("429", retry_after=0.0), None])

    sleeps = run(RetryPolicy(base=0.5, jitter=0.0), upstream)

    assert sleeps.waits == [0.5]


def test_no_wait_is_longer_than_max_wait_whatever_is_asked() -> None:
    policy = RetryPolicy(attempts=3, base=1.0, max_wait=0.2)
    upstream = Upstream([TransientError("429", retry_after=3600.0)])
    sleeps = Sleeps()

    with pytest.raises(TransientError):
        run(policy, upstream, sleeps=sleeps)

    assert sleeps.waits == [0.2, 0.2]
    assert policy.wait(10, None) == 0.2


@pytest.mark.parametrize(
    ("honour", "headers", "expected"),
    [
        (("Retry-After",), {"Retry-After": "7"}, 7.0),
        (("Retry-After",), {"retry-after": "Thu, 28 May 2026 20:27:10 GMT"}, 0.0),
        (("Retry-After",), {"retryIn": "3"}, None),
        (("retryIn",), {"retryIn": "3"}, 3.0),
        (("retryIn",), {"Retry-After": "7"}, None),
        (("retryIn", "Retry-After"), {"Retry-After": "7", "retryIn": "soon"}, 7.0),
        (("Retry-After",), {}, None),
    ],
    ids=[
        "delta_seconds",
        "http_date_in_the_past",
        "retry_in_not_honoured",
        "retry_in",
        "only_retry_in_honoured",
        "first_readable_header",
        "absent",
    ],
)
def test_the_honoured_headers_are_read(
    honour: tuple[str, ...], headers: dict[str, str], expected: float | None
) -> None:
    assert RetryPolicy(honour=honour).asked(httpx.Headers(headers)) == expected


def test_an_http_date_in_the_future_is_waited_out() -> None:
    moment = time.time() + 30
    header = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(moment))

    asked = RetryPolicy().asked(httpx.Headers({"Retry-After": header}))

    assert asked is not None and 27.0 <= asked <= 30.0


def test_the_header_of_a_third_party_error_is_honoured() -> None:
    response = httpx.Response(429, headers={"Retry-After": "0.4"})
    upstream = Upstream([Refused(response), None])
    policy = RetryPolicy(base=0.01, transient=lambda exc: isinstance(exc, Refused))

    sleeps = run(policy, upstream)

    assert (upstream.calls, sleeps.waits) == (2, [0.4])


def test_direct_retry_in_is_honoured() -> None:
    response = httpx.Response(201, headers={"retryIn": "0.3"})
    upstream = Upstream([Refused(response), None])
    policy = RetryPolicy(
        attempts=None, base=0.0, jitter=0.0, honour=("retryIn",), transient=lambda e: True
    )

    sleeps = run(policy, upstream)

    assert sleeps.waits == [0.3]


def test_the_backoff_grows_exponentially_within_its_jitter_bounds() -> None:
    policy = RetryPolicy(base=0.5, jitter=0.25, max_wait=1_000.0)
    draws = random.Random(20)

    for attempt in range(1, 8):
        exact = 0.5 * 2 ** (attempt - 1)
        assert policy.backoff(attempt, lambda: 0.0) == exact
        assert policy.backoff(attempt, lambda: 1.0) == exact * 1.25
        waits = {policy.wait(attempt, None, draws.random) for _ in range(50)}
        assert all(exact <= w <= exact * 1.25 for w in waits), waits
        assert len(waits) > 1, "jitter spreads the waits"


def test_no_wait_is_begun_that_would_cross_the_deadline() -> None:
    deadline = Deadline(0.5)
    upstream = Upstream([TransientError("429", retry_after=0.3)])

    with pytest.raises(
        DeadlineExceeded, match=r"deadline of 0.5 s while testing \(last: 429\)"
    ) as e:
        run(RetryPolicy(attempts=10, base=0.01), upstream, deadline)

    # The first wait fits (0.3 of 0.5 s); the second would cross the deadline: not begun.
    assert upstream.calls == 2
    assert isinstance(e.value.__cause__, TransientError)
    assert not deadline.expired


def test_a_first_wait_past_the_deadline_means_one_attempt_and_no_sleep() -> None:
    sleeps = Sleeps(real=True)
    upstream = Upstream([TransientError("503", retry_after=5.0)])

    with pytest.raises(DeadlineExceeded):
        RetryPolicy(attempts=10).call(Deadline(1.0), "testing", upstream, sleep=sleeps)

    assert (upstream.calls, sleeps.waits) == (1, [])


def test_no_attempt_starts_after_the_deadline() -> None:
    deadline = Deadline(0.3)
    started: list[float] = []

    def slow() -> str:
        deadline.check("testing")
        started.append(deadline.remaining())
        time.sleep(0.15)
        raise TransientError("timeout")

    with pytest.raises(DeadlineExceeded):
        RetryPolicy(attempts=10, base=0.01, jitter=0.0).call(deadline, "testing", slow)

    assert 1 <= len(started) <= 2 and all(left > 0 for left in started)


def test_a_budget_stops_before_the_wait_that_would_cross_it_with_the_last_error() -> None:
    upstream = Upstream([TransientError("still queued", retry_after=0.04)])
    policy = RetryPolicy(attempts=None, base=0.0, jitter=0.0, budget=0.1)
    sleeps = Sleeps(real=True)

    with pytest.raises(TransientError, match="still queued"):
        run(policy, upstream, Deadline(60.0), sleeps)

    assert upstream.calls == len(sleeps.waits) + 1 >= 2
    assert sum(sleeps.waits) < 0.1
