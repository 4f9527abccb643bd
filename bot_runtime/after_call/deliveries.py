"""Records on their way: spooled, analysed, delivered by tasks the process keeps track of."""

import asyncio
from typing import Any

from loguru import logger

from bot_runtime.after_call import spool
from bot_runtime.after_call.spool import SpooledRecord
from bot_runtime.after_call.summaries import analyse
from bot_runtime.after_call.webhook import deliver
from bot_runtime.config.call_records import RecordDelivery
from bot_runtime.config.settings import LOCAL, BotSettings

# What an attempt in flight, or an analysis, gets when the bot stops (an attempt's own limit).
SHUTDOWN_GRACE_SECS = 5.0

# Every delivery is a task kept here (by webhook-id: one per record in a process), so none is
# dropped half-way by the garbage collector or forgotten at shutdown.
_tasks: dict[str, asyncio.Task] = {}
_stopping = asyncio.Event()
_spool_retried = False


def send_after_the_call(document: dict[str, Any], *, settings: BotSettings) -> asyncio.Task:
    """Spool ``document``, then analyse and deliver it beside the next calls, never before them."""
    delivery = settings.record_delivery
    assert delivery is not None  # Only called with CALL_WEBHOOK_URL set.
    spooled = SpooledRecord.new(document, analysis_pending=_analyses(settings))
    return _start(spooled, _spool_then_send(spooled, settings=settings, delivery=delivery))


async def record_sent(task: asyncio.Task, *, timeout_secs: float = SHUTDOWN_GRACE_SECS) -> None:
    """Wait a little for one record's first delivery, without ever cancelling it.

    On Pipecat Cloud the instance may be recycled once bot() returns; these seconds
    let the common case, a healthy webhook, finish first.
    """
    await asyncio.wait({task}, timeout=timeout_secs)


def retry_the_spool(settings: BotSettings) -> None:
    """Send every record an earlier run left in the spool, in the background (once a process)."""
    global _spool_retried
    delivery = settings.record_delivery
    if _spool_retried or delivery is None:
        return
    _spool_retried = True
    _start_task("spool", _send_the_spool(settings=settings, delivery=delivery))


async def stop_deliveries(settings: BotSettings) -> None:
    """On shutdown: attempts and analyses in flight get a few seconds; the rest stays spooled."""
    delivery = settings.record_delivery
    if delivery is None:
        return
    _stopping.set()
    running = set(_tasks.values())
    if running:
        _, late = await asyncio.wait(running, timeout=SHUTDOWN_GRACE_SECS)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    left, _ = await asyncio.to_thread(spool.waiting, delivery.spool_dir)
    if left:
        logger.warning(
            f"{len(left)} call record(s) not delivered yet stay in {delivery.spool_dir};"
            " sent at the next start"
        )


async def _spool_then_send(
    spooled: SpooledRecord, *, settings: BotSettings, delivery: RecordDelivery
) -> None:
    # Written before anything that takes time or may fail: from here on, nothing is lost.
    try:
        await asyncio.to_thread(spool.write, delivery.spool_dir, spooled)
    except OSError as error:  # A full disk: the record still goes, without a copy.
        logger.error(
            f"Call record of {spooled.call_sid} not spooled ({type(error).__name__}: "
            f"{error.strerror}); sending it without a copy"
        )
    await _analyse_then_deliver(spooled, settings=settings, delivery=delivery)


async def _analyse_then_deliver(
    spooled: SpooledRecord, *, settings: BotSettings, delivery: RecordDelivery
) -> None:
    """Write the post-call analysis if it is still owed, then deliver."""
    if spooled.analysis_pending:
        spec = settings.agent.analysis
        if _analyses(settings) and spec is not None:
            spooled.record["analysis"] = await analyse(
                spooled.record["transcript"], spec=spec, settings=settings
            )
        spooled.analysis_pending = False
        await asyncio.to_thread(spool.update, delivery.spool_dir, spooled)
    await deliver(spooled, delivery=delivery, stopping=_stopping)


async def _send_the_spool(*, settings: BotSettings, delivery: RecordDelivery) -> None:
    waiting, unreadable = await asyncio.to_thread(spool.waiting, delivery.spool_dir)
    for name in unreadable:
        logger.warning(f"Call record spool: {name} cannot be read; left where it is")
    fresh = [spooled for spooled in waiting if spooled.webhook_id not in _tasks]
    if fresh:
        logger.info(f"Sending {len(fresh)} call record(s) left in {delivery.spool_dir}")
    for spooled in fresh:
        _start(spooled, _analyse_then_deliver(spooled, settings=settings, delivery=delivery))


def _analyses(settings: BotSettings) -> bool:
    """Whether the agent file asks for an analysis the call's LLM can write."""
    return settings.agent.analysis is not None and settings.llm_provider != LOCAL


def _start(spooled: SpooledRecord, work: Any) -> asyncio.Task:
    return _start_task(spooled.webhook_id, work)


def _start_task(key: str, work: Any) -> asyncio.Task:
    task = asyncio.ensure_future(work)
    _tasks[key] = task
    task.add_done_callback(lambda done: _finished(key, done))
    return task


def _finished(key: str, task: asyncio.Task) -> None:
    if _tasks.get(key) is task:
        del _tasks[key]
    if not task.cancelled() and task.exception() is not None:
        # The record is in the spool: the next start, or the operator, sends it.
        logger.opt(exception=task.exception()).error("Sending a call record failed")
