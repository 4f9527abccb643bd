"""Start-up work on an event loop of its own: an SDK's first use, done before the first call."""

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from loguru import logger

T = TypeVar("T")


def warm_up(work: Callable[[], Coroutine[Any, Any, T]], *, what: str) -> T | None:
    """Run ``work()`` to its end on a loop of its own, in a thread, and return what it gave.

    A thread: the SDKs' async clients need a running loop, and the importer may or may
    not be running one already. A failure is logged and returns None: it only costs the
    first call the time the warm-up would have saved.
    """
    results: list[T] = []

    def run() -> None:
        try:
            results.append(asyncio.run(work()))
        except Exception as error:  # Never worth stopping the bot for.
            logger.warning(f"Could not warm up {what}: {error!r}")

    thread = threading.Thread(target=run, name="warm-up")
    thread.start()
    thread.join()
    return results[0] if results else None
