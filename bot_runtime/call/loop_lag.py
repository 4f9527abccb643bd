"""Event-loop lag: the longest the loop was blocked during each call; one warning if too long."""

import asyncio
import time
import weakref
from functools import cache

from loguru import logger

# One tick every 50 ms, shared by every call of the process, sees any block worth a warning
# while waking an otherwise idle loop only 20 times a second, and not at all between calls.
TICK_SECS = 0.05
# Past this, a caller hears it: the bot's audio and every other call's stall mid-word.
WARN_SECS = 0.1


class LoopLag:
    """How late the event loop ran a timer while one call was being watched.

    The loop runs every call of the process: code that holds it (a blocking
    call, a module imported on first use) delays every call's audio as long.
    A block shows as a tick run late; one that starts just after a tick is
    seen up to ``TICK_SECS`` short, so the figure is a lower bound. The time the
    process waited for a CPU meanwhile (a loaded host) is left out: that is not
    code holding the loop.
    """

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.longest_secs = 0.0
        self.longest_at_secs = 0.0  # How far into the call the longest block ended.

    def saw(self, late_secs: float) -> None:
        if late_secs > self.longest_secs:
            self.longest_secs = late_secs
            self.longest_at_secs = time.monotonic() - self.started_at


def watch_loop_lag() -> LoopLag:
    """Start watching the running loop for one call; stop with ``stop_watching``.

    Call it before the call's first piece of work is scheduled: the first tick is
    due from this moment, so a block by anything scheduled after is seen.
    """
    lag = LoopLag()
    _ticker(asyncio.get_running_loop()).add(lag)
    return lag


def stop_watching(lag: LoopLag) -> float:
    """Stop watching; warn once if the loop was blocked for long; return the longest block."""
    _ticker(asyncio.get_running_loop()).remove(lag)
    if lag.longest_secs > WARN_SECS:
        logger.warning(
            f"The event loop was blocked for {lag.longest_secs * 1000:.0f} ms"
            f" ({lag.longest_at_secs:.1f} s into the call): every call on this process"
            " went silent meanwhile. Look for blocking code (time.sleep, a synchronous HTTP"
            " client or database driver, e.g. in agent_tools.py), or CPU-heavy work that"
            " belongs in a thread"
        )
    return lag.longest_secs


class _Ticker:
    """One timer per loop, due every ``TICK_SECS`` while any call is watched.

    A timer callback rather than a task: no coroutine step per tick, and its due
    time is set at once, not when a task first gets to run. A call that never
    stops watching (it failed while being built) drops out when it is collected.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watched: weakref.WeakSet[LoopLag] = weakref.WeakSet()
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._waited_before = 0.0

    def add(self, lag: LoopLag) -> None:
        self._watched.add(lag)
        if self._handle is None:
            self._schedule()

    def remove(self, lag: LoopLag) -> None:
        self._watched.discard(lag)
        if not self._watched and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._due = self._loop.time() + TICK_SECS
        self._waited_before = _run_queue_secs()
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        # A loaded host runs the loop late too: the time this thread sat ready to run while
        # other processes had the CPU is theirs, not a block of the loop's.
        waited = _run_queue_secs() - self._waited_before
        late = max(0.0, self._loop.time() - self._due - waited)
        for lag in self._watched:
            lag.saw(late)
        self._handle = None
        if self._watched:
            self._schedule()


@cache
def _ticker(loop: asyncio.AbstractEventLoop) -> _Ticker:
    return _Ticker(loop)


def _run_queue_secs() -> float:
    """How long the calling thread has waited, ready to run, for a CPU (Linux's schedstat;
    0 where the kernel does not say). An in-memory file: a read costs about 10 µs."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0
