"""Work a call does beside its pipeline (endings, lookups), cancelled when the call ends."""

import asyncio
from collections.abc import Awaitable

from loguru import logger


class SideTasks:
    """The call's side tasks: their failures are logged, never raised into the call."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task] = []

    def start(self, work: Awaitable[None]) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        task.add_done_callback(_log_failure)
        self._tasks = [t for t in self._tasks if not t.done()] + [task]
        return task

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()


def _log_failure(task: asyncio.Task) -> None:
    """Side tasks must never end a call, but their failures must not vanish either."""
    if not task.cancelled() and task.exception() is not None:
        logger.opt(exception=task.exception()).error("A side task of the call failed")
