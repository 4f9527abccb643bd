"""A spooled call record leaves: signed POSTs (Standard Webhooks), retried for a day."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
from loguru import logger
from standardwebhooks import Webhook

from bot_runtime.after_call import spool
from bot_runtime.after_call.spool import SpooledRecord
from bot_runtime.config.call_records import RecordDelivery
from bot_runtime.http_session import RedirectRefused, same_origin_request

ATTEMPT_TIMEOUT_SECS = 5.0
# The gaps between attempts double from a second, so a blip costs seconds, up to five minutes,
# so a receiver down for hours is not hammered; the bot keeps trying for a day.
FIRST_GAP_SECS = 1.0
MAX_GAP_SECS = 300.0
KEEP_TRYING_SECS = 24 * 3600.0
# Said in every line about a record left waiting: how the operator sends it.
SEND_AGAIN = "send it with `uv run scripts/call_records.py --send`"


class _Retryable(Exception):
    """An attempt that may work later: no connection, a timeout, a 5xx, a 429, a redirect away."""


async def deliver(
    spooled: SpooledRecord, *, delivery: RecordDelivery, stopping: asyncio.Event
) -> None:
    """Send until a webhook answers 2xx, with growing gaps, for a day; the file goes on success.

    A 4xx other than 429 is the receiver refusing this record: not retried. Either
    way the record stays in the spool. ``stopping`` (the bot shutting down) ends the
    wait between attempts: the record waits in the spool for the next start.
    """
    while True:
        problem, retryable = await attempt(spooled, delivery=delivery)
        if problem is None:
            logger.info(f"Call record of {spooled.call_sid} delivered (attempt {spooled.attempts})")
            return
        gap = min(FIRST_GAP_SECS * 2 ** min(spooled.attempts - 1, 20), MAX_GAP_SECS)
        giving_up = not retryable or spooled.age_secs() >= KEEP_TRYING_SECS
        if not giving_up:
            spooled.next_attempt_at = _iso(datetime.now(UTC) + timedelta(seconds=gap))
        await asyncio.to_thread(spool.update, delivery.spool_dir, spooled)
        where = f"it stays in {delivery.spool_dir}: {SEND_AGAIN}"
        if not retryable:
            logger.error(f"Call record of {spooled.call_sid} not delivered: {problem}; {where}")
            return
        if giving_up:
            logger.error(
                f"Call record of {spooled.call_sid} not delivered after"
                f" {KEEP_TRYING_SECS / 3600:g} h of attempts (last: {problem}); {where}"
            )
            return
        try:
            await asyncio.wait_for(stopping.wait(), gap)
            return
        except TimeoutError:
            pass


async def attempt(spooled: SpooledRecord, *, delivery: RecordDelivery) -> tuple[str | None, bool]:
    """One signed POST: (None, _) once the webhook took it and the file is deleted, else what
    went wrong and whether it may work later, noted in ``spooled`` for the caller to save.

    Every attempt carries the record's one webhook-id (the receiver de-duplicates by it)
    and a fresh webhook-timestamp, signed again: receivers refuse a timestamp minutes old.
    """
    spooled.attempts += 1
    try:
        status = await _post(
            delivery.url, spooled.body(), webhook_id=spooled.webhook_id, secret=delivery.secret
        )
    except _Retryable as problem:
        outcome, retryable = str(problem), True
    else:
        if 200 <= status < 300:
            await asyncio.to_thread(spool.delete, delivery.spool_dir, spooled)
            return None, False
        outcome, retryable = f"HTTP {status}, not retried", False
    spooled.last_outcome = outcome
    spooled.next_attempt_at = None
    return outcome, retryable


async def _post(url: str, body: str, *, webhook_id: str, secret: str) -> int:
    """One attempt: the receiver's status, or _Retryable for what is worth trying again."""
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
    }
    try:
        async with (
            asyncio.timeout(ATTEMPT_TIMEOUT_SECS),
            same_origin_request("POST", url, data=body.encode(), headers=headers) as response,
        ):
            status = response.status
    except TimeoutError:
        raise _Retryable(f"no answer within {ATTEMPT_TIMEOUT_SECS:g} s") from None
    except RedirectRefused as refused:
        raise _Retryable(f"the receiver {refused}") from None
    except aiohttp.ClientError as error:
        raise _Retryable(f"connection failed ({type(error).__name__})") from None
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status}")
    return status


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
