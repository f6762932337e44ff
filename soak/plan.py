"""What a simulated day does and when: the schedules it walks through and the faults it injects.

Times are minutes after the day's start (00:00 Moscow time). A fault acts *before* the slot
it is pinned to fires; an incident names the alerts it must raise (and see resolved), each
`(job, kind)` exactly once within its window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zakaz_common.manifest import CONTRACT_SOURCES, get_manifest
from zakaz_common.scheduler import SYSTEM_JOBS

if TYPE_CHECKING:
    from soak.stack import Stack

#: Schedules that are sources (recorded in `meta_job_runs`); the others are system jobs.
SOURCES = CONTRACT_SOURCES

#: The schedules the day walks through: the manifests' and the system jobs' own crons.
SCHEDULES = {name: get_manifest(name).schedule for name in SOURCES} | {
    name: job.cron for name, job in SYSTEM_JOBS.items()
}

#: The Sales tab's header the broken-header incident clears (and puts back).
SALES_HEADER = "Выручка"


@dataclass
class Fault:
    """Something done to the platform or an upstream before the slot at `minute` fires."""

    minute: int
    name: str
    act: Callable[[Stack], None] | None = None
    #: "kill": SIGKILL `zakaz up` while this slot's load runs, then start it again.
    kill: bool = False
    #: Runs through `/local/runs` after the action (sources), awaited like slots.
    runs: tuple[str, ...] = ()


@dataclass
class Incident:
    """A stretch of the day something is wrong: the alerts it must raise, once each."""

    name: str
    start: int
    end: int
    alerts: tuple[tuple[str, str], ...]
    #: Sources whose runs may fail (recorded `error`) inside the window.
    failing: tuple[str, ...] = ()


@dataclass
class Plan:
    hours: int
    faults: list[Fault] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    #: Minute from which the day's start is counted (a 2 h day starts after the ad loads).
    start_minute: int = 0


# -- the actions -------------------------------------------------------------------------------


def _storm(source: str, kind: str, calls: int) -> Callable[[Stack], None]:
    """The next `calls` API calls of the source's upstream answer 429 (or 503)."""
    throttled = kind == "429"

    def act(stack: Stack) -> None:
        if source == "qtickets_sheets":
            body = {"rate_limit": calls} if throttled else {"server_errors": calls}
            stack.control("sheets/faults", {**body, "retry_after": 0})
        elif source == "qtickets_api":
            stack.control(
                "qtickets/faults",
                {"status": 429 if throttled else 503, "count": calls, "retry_after": 0},
            )
        elif source == "vk_ads":
            if throttled:
                stack.control("vk/throttle", {"count": calls, "retry_after": 0})
            else:
                stack.control("vk/fail", {"count": calls, "status": 503})
        elif source == "direct":
            stack.control(
                "direct/fault", {"http_status": 429 if throttled else 503, "times": calls}
            )
        else:
            body = {"rate_limit": calls} if throttled else {"server_errors": calls}
            stack.control("gmail/faults", {**body, "retry_after": 0})

    return act


def _both(*acts: Callable[[Stack], None]) -> Callable[[Stack], None]:
    def act(stack: Stack) -> None:
        for one in acts:
            one(stack)

    return act


def _break_header(stack: Stack) -> None:
    stack.control("sheets/headers/remove", {"tab": "Sales", "header": SALES_HEADER})


def _mend_header(stack: Stack) -> None:
    # Column E of the Sales tab holds the revenue (sheets_data: Дата, ID, Город, Продано, Выручка).
    stack.control("sheets/cells", {"tab": "Sales", "cell": "E1", "value": SALES_HEADER})


def _expire_tokens(stack: Stack) -> None:
    """Every cached access token expires: Google's (Sheets, Gmail) and VK's."""
    stack.control("google/expire-access-tokens")
    stack.control("vk/tokens/expire")


def _enable_gmail(on: bool) -> Callable[[Stack], None]:
    def act(stack: Stack) -> None:
        stack.redis().set("zakaz:enabled:gmail", "1" if on else "0")

    return act


def _redis_restart(stack: Stack) -> None:
    stack.restart_redis()


#: Orders refunded so far, so that each refund takes another one.
_refunded: set[int] = set()


def _refund(stack: Stack) -> None:
    """A customer gets their money back: the newest paid order not refunded yet."""
    orders = stack.sandbox_orders()
    for order in sorted(orders, key=lambda o: str(o.get("payed_at") or ""), reverse=True):
        if (
            order["id"] not in _refunded
            and order.get("payed") is True
            and order.get("deleted_at") is None
            and order.get("baskets")
            and all(b.get("refunded_at") is None for b in order["baskets"])
        ):
            _refunded.add(order["id"])
            stack.control(f"qtickets/orders/{order['id']}/refund")
            return


def _new_sales(stack: Stack) -> None:
    """New orders arrive: a new order in QTickets, a sale row in the sheet, a Gmail report."""
    truth = stack.control("sheets/truth", method="GET")
    sale = truth["sales"][-1]
    day = stack.virtual_date()
    stack.control(
        "sheets/rows/append",
        {"tab": "Sales", "rows": [[day, int(sale["event_id"]), "", 1, 1500]]},
    )
    stack.control(
        "gmail/messages",
        {
            "kind": "html",
            "sale_date": day,
            "rows": [{"event_id": int(sale["event_id"]), "tickets_sold": 2, "revenue": "3000"}],
        },
    )


def _primaries_down(stack: Stack) -> None:
    """Both QTickets feeds stop: the API token is rotated, the sheet is no longer shared."""
    stack.control("qtickets/token", {"token": "qt-rotated-during-the-soak-0000"})
    stack.control("sheets/sharing", {"shared": False})


def _primaries_up(stack: Stack) -> None:
    from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN

    stack.control("qtickets/token", {"token": SANDBOX_TOKEN})
    stack.control("sheets/sharing", {"shared": True})


# -- the two days ------------------------------------------------------------------------------


def _h(hours: int, minutes: int = 0) -> int:
    return hours * 60 + minutes


def full_day() -> Plan:
    """24 hours: every fault of the brief."""
    faults = [
        Fault(0, "gmail enabled by the operator", _enable_gmail(True)),
        Fault(0, "429 storm on VK", _storm("vk_ads", "429", 3)),
        Fault(10, "429 storm on Direct", _storm("direct", "429", 2)),
        Fault(
            45,
            "429 storm on QTickets API and Sheets",
            _both(_storm("qtickets_api", "429", 3), _storm("qtickets_sheets", "429", 3)),
        ),
        Fault(_h(1), "SIGKILL of zakaz up mid-load, restart", kill=True),
        Fault(_h(1, 30), "new orders", _new_sales),
        Fault(
            _h(2, 30),
            "5xx burst on QTickets API and Sheets",
            _both(_storm("qtickets_api", "5xx", 3), _storm("qtickets_sheets", "5xx", 3)),
        ),
        Fault(_h(3, 15), "redis-server restarted", _redis_restart),
        Fault(_h(4), "429 storm on Gmail", _storm("gmail", "429", 2)),
        Fault(_h(5), "access tokens expired (Google, VK)", _expire_tokens),
        Fault(_h(5, 30), "a refund", _refund),
        Fault(_h(6), "SIGKILL of zakaz up mid-load, restart", kill=True),
        Fault(_h(7), "new orders", _new_sales),
        Fault(_h(8), "5xx burst on Gmail", _storm("gmail", "5xx", 2)),
        Fault(_h(9), "Sheets header broken", _break_header),
        Fault(_h(11), "Sheets header mended", _mend_header),
        Fault(
            _h(12, 5),
            "5xx burst on VK and Direct, runs by hand",
            _both(_storm("vk_ads", "5xx", 2), _storm("direct", "5xx", 2)),
            runs=("vk_ads", "direct"),
        ),
        Fault(_h(13), "gmail handed to the failover", _enable_gmail(False)),
        Fault(_h(13, 30), "both QTickets feeds down", _primaries_down),
        Fault(_h(12, 30), "a refund", _refund),
        Fault(_h(16, 15), "both QTickets feeds back", _primaries_up),
        Fault(_h(18, 15), "gmail enabled by the operator again", _enable_gmail(True)),
        Fault(_h(19), "new orders", _new_sales),
        Fault(_h(21), "a refund", _refund),
    ]
    incidents = [
        Incident(
            "Sheets header broken",
            _h(9),
            _h(12),
            (("qtickets_sheets", "run_failed"), ("qtickets_sheets", "stale")),
            failing=("qtickets_sheets",),
        ),
        Incident(
            "both QTickets feeds down, Gmail failover",
            _h(13, 30),
            _h(18),
            (
                ("qtickets_sheets", "run_failed"),
                ("qtickets_api", "run_failed"),
                ("qtickets_sheets", "stale"),
                ("qtickets_api", "stale"),
                ("gmail", "failover"),
            ),
            failing=("qtickets_sheets", "qtickets_api"),
        ),
    ]
    return Plan(24, faults, incidents)


def short_day() -> Plan:
    """Two hours (for `make test`): one SIGKILL and restart, one 429 storm, a broken header."""
    faults = [
        Fault(15, "429 storm on QTickets API", _storm("qtickets_api", "429", 3)),
        Fault(30, "SIGKILL of zakaz up mid-load, restart", kill=True),
        Fault(45, "Sheets header broken", _break_header),
        Fault(_h(1, 15), "new orders", _new_sales),
        Fault(_h(1, 30), "Sheets header mended", _mend_header),
    ]
    incidents = [
        Incident(
            "Sheets header broken",
            45,
            _h(1, 30),
            (("qtickets_sheets", "run_failed"),),
            failing=("qtickets_sheets",),
        ),
    ]
    return Plan(2, faults, incidents, start_minute=15)


def plan_for(hours: int) -> Plan:
    """The full day for 24 hours, the short one for 2; other lengths cut the full day short."""
    if hours == 2:
        return short_day()
    plan = full_day()
    limit = _h(hours)
    plan.hours = hours
    plan.faults = [f for f in plan.faults if f.minute <= limit]
    plan.incidents = [i for i in plan.incidents if i.end <= limit]
    return plan
