"""An eval by pipecat's harness: proven allowed, then run as the same call with no Twilio part."""

import contextlib
import dataclasses
import hmac
import uuid
from typing import Any
from urllib.parse import parse_qs

from fastapi import WebSocket
from loguru import logger

from bot_runtime.call.facts import CallFacts
from bot_runtime.call.phone_call import PhoneCall
from bot_runtime.config.settings import BotSettings, TwilioSettings
from bot_runtime.phone_line import STREAM_SECRET_PARAMETER
from bot_runtime.twilio.stream import EvalConnect, StreamStart


def eval_refusal(
    settings: BotSettings, *, offered_secret: str | None, from_this_machine: bool
) -> str | None:
    """Why this eval must not run, or None when it may.

    An eval spends on STT, LLM and TTS like a call, and Twilio cannot vouch for it,
    so it proves itself as a test call does: with STREAM_SECRET set it must carry
    the secret, wherever it comes from; without it, only an eval straight from this
    machine under the development runner (``from_this_machine``) runs. A deployed
    agent without STREAM_SECRET takes no eval at all. The reason never holds the
    secret.
    """
    if settings.stream_secret:
        if offered_secret is None:
            return f"it carried no {STREAM_SECRET_PARAMETER} (see docs/evals.md)"
        if not hmac.compare_digest(offered_secret.encode(), settings.stream_secret.encode()):
            return f"the {STREAM_SECRET_PARAMETER} it carried is wrong"
        return None
    if from_this_machine:
        return None
    return "no STREAM_SECRET on this bot: only an eval from this machine (development runner) runs"


def secret_carried(websocket: WebSocket, body: Any, *, dev_runner: bool) -> str | None:
    """The stream secret the eval carried, where the host lets it carry one.

    Under the development runner, in the bot URL's query (``?stream_secret=...``):
    there the body is the runner's own ``--runner-body`` file, which proves nothing.
    On Pipecat Cloud, which passes a session's body to the bot and not its URL, in
    the body the session was started with (``{"stream_secret": ...}``).
    """
    if dev_runner:
        in_query = parse_qs(websocket.url.query).get(STREAM_SECRET_PARAMETER)
        return in_query[0] if in_query else None
    in_body = body.get(STREAM_SECRET_PARAMETER) if isinstance(body, dict) else None
    return in_body if isinstance(in_body, str) else None


def eval_settings(settings: BotSettings) -> BotSettings:
    """The agent's settings for an eval: nothing reaches Twilio, and no call record is sent.

    An eval is no call of the business's: without Twilio credentials no REST request
    (lookup, recording, transfer, hang-up) can be made for it, and it sends no record
    to the webhook. The agent is otherwise the same: prompt, agent file, tools, endings.
    """
    return dataclasses.replace(
        settings,
        twilio=TwilioSettings(phone_number=settings.twilio.phone_number),
        record_calls=False,
        call_webhook_url=None,
    )


async def run_eval(
    websocket: WebSocket,
    connect: EvalConnect,
    *,
    settings: BotSettings,
    offered_secret: str | None,
    from_this_machine: bool,
    handle_sigint: bool = False,
) -> None:
    """Authorise the eval before anything costs money, then run it as a call on its line."""
    eval_id = f"eval-{uuid.uuid4().hex[:12]}"
    with logger.contextualize(call_sid=eval_id):
        reason = eval_refusal(
            settings, offered_secret=offered_secret, from_this_machine=from_this_machine
        )
        if reason:
            logger.warning(f"Refused an eval: {reason}")
            # The reason goes to the harness, which shows it (a close reason's 123 bytes hold it).
            with contextlib.suppress(RuntimeError):  # The harness may have closed first.
                await websocket.close(code=1008, reason=f"eval refused: {reason}")
            return
        flags = connect.flags
        logger.info(
            f"Eval started by pipecat's harness (skip_tts={flags.skip_tts}, "
            f"capture_bot_audio={flags.capture_bot_audio}): no Twilio request, no call record"
        )
        start = StreamStart(
            stream_sid=eval_id, call_sid=eval_id, account_sid=None, received_at=connect.received_at
        )
        call = PhoneCall(
            websocket,
            start=start,
            facts=CallFacts(),
            settings=eval_settings(settings),
            eval_flags=flags,
        )
        await call.run(handle_sigint=handle_sigint)
