"""Ctrl-C and SIGTERM of a command that runs loads (`zakaz run`, `zakaz backfill`).

`handling_signals()` (main thread) turns SIGINT and SIGTERM into `Interrupted`. Where the
exception lands matters: inside a source's load it stops the load, which `execute` records as
`error` ("interrupted"); while a run is being recorded or lets go of its lock, an exception would
leave a `running` row or a held lock behind, so `execute` marks that part `deferred()`: a signal
there is only noted, and the noted signal turns the run's outcome into `error` all the same.
A second Ctrl-C is handled the same way as the first, so it cannot skip the recording either.

Without `handling_signals()` (an RQ worker, a test) every function here does nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from zakaz_common.errors import ZakazError

#: The signals a command stops on: Ctrl-C, and what `docker stop` and init systems send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(ZakazError):
    """The command was told to stop (SIGINT or SIGTERM) while it worked."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        #: The signal that stopped it.
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by signal: 128 + its number (130, 143)."""
        return 128 + self.signum


class _Guard:
    """The installed handler: a stack of modes and the first signal seen."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.modes: list[bool] = []  # True: raise; False: only note

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if not self.modes or self.modes[-1]:
            raise Interrupted(self.signum)


#: The installed guard (at most one: signal handlers are per process).
_installed: list[_Guard] = []


class SignalState:
    """What `handling_signals` yields: which stop signal arrived, if one did."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard

    @property
    def signum(self) -> int | None:
        """The first stop signal received, or None."""
        return self._guard.signum

    @property
    def exit_code(self) -> int:
        """128 + the signal (0 when none arrived)."""
        return 0 if self._guard.signum is None else 128 + self._guard.signum


@contextmanager
def handling_signals() -> Iterator[SignalState]:
    """Raise `Interrupted` on SIGINT/SIGTERM in the block (main thread only), then restore."""
    guard = _Guard()
    previous: dict[int, Any] = {sig: signal.signal(sig, guard.handle) for sig in STOP_SIGNALS}
    _installed.append(guard)
    try:
        yield SignalState(guard)
    finally:
        _installed.remove(guard)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _active() -> _Guard | None:
    if not _installed or threading.current_thread() is not threading.main_thread():
        return None
    return _installed[-1]


@contextmanager
def deferred() -> Iterator[None]:
    """A stop signal in the block is only noted (for bookkeeping that must not be cut short)."""
    guard = _active()
    if guard is None:
        yield
        return
    guard.modes.append(False)
    try:
        yield
    finally:
        guard.modes.pop()


@contextmanager
def raising() -> Iterator[None]:
    """A stop signal in the block raises `Interrupted`; one noted before raises on entry."""
    guard = _active()
    if guard is None:
        yield
        return
    guard.modes.append(True)
    try:
        if guard.signum is not None:
            raise Interrupted(guard.signum)
        yield
    finally:
        guard.modes.pop()


def interrupted() -> int | None:
    """The stop signal received so far under `handling_signals`, or None."""
    return _installed[-1].signum if _installed else None


def raise_if_interrupted() -> None:
    """Raise `Interrupted` if a stop signal was received (one a load may have swallowed)."""
    signum = interrupted()
    if signum is not None:
        raise Interrupted(signum)
