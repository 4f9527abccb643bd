"""The call record leaves the call: one signed POST (Standard Webhooks) to the business's server."""

import asyncio
import json
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from loguru import logger
from standardwebhooks import Webhook

from bot_runtime.after_call.summaries import analyse
from bot_runtime.config.settings import LOCAL, BotSettings
from bot_runtime.http_session import RedirectRefused, same_origin_request

# Waits before each retry: four attempts over about ten seconds, each with the same webhook-id
# so the receiver can tell a retry from a new call.
RETRY_DELAYS_SECS = (1.0, 3.0, 6.0)
ATTEMPT_TIMEOUT_SECS = 5.0
# Deliveries run after their call has ended; kept here so none is dropped half-way by the
# garbage collector, and so a test or a shutdown can wait for them.
_deliveries: set[asyncio.Task] = set()


class _Retryable(Exception):
    """An attempt that may work later: no connection, a timeout, a 5xx, a 429, a redirect away."""


def send_after_the_call(work: Awaitable[None]) -> None:
    """Run ``work`` (finish the record, deliver it) beside the next calls, never before them."""
    task = asyncio.ensure_future(work)
    _deliveries.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task) -> None:
    _deliveries.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.opt(exception=task.exception()).error("Sending a call record failed")


async def send_call_record(document: dict[str, Any], *, settings: BotSettings) -> None:
    """Fill in the post-call analysis when the agent file asks for one, then deliver."""
    spec = settings.agent.analysis
    if spec is not None and settings.llm_provider != LOCAL:
        document["analysis"] = await analyse(document["transcript"], spec=spec, settings=settings)
    assert settings.call_webhook_url and settings.call_webhook_secret  # Checked at start-up.
    await deliver(document, url=settings.call_webhook_url, secret=settings.call_webhook_secret)


async def deliver(document: dict[str, Any], *, url: str, secret: str) -> bool:
    """POST the record, signed, retrying what may work later; True once the receiver took it.

    A final failure is logged with the call sid and the last status, never the
    document (it holds what the caller said and whole phone numbers).
    """
    webhook_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    call_sid = document.get("call_sid")
    outcome = "not tried"
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS_SECS), start=1):
        await asyncio.sleep(delay)
        try:
            status = await _post(url, body, webhook_id=webhook_id, secret=secret)
        except _Retryable as problem:
            outcome = str(problem)
            continue
        if 200 <= status < 300:
            logger.info(f"Call record of {call_sid} delivered (attempt {attempt})")
            return True
        outcome = f"HTTP {status}, not retried"
        break
    logger.error(f"Call record of {call_sid} not delivered: {outcome}")
    return False


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
