"""A voice agent on a Twilio phone number: one call per Media Stream, on Pipecat Cloud or locally.

Pipecat Cloud's /ws/twilio endpoint (and, locally, `uv run bot.py -t twilio`) hands each
Twilio Media Stream to `bot()`. The life of a call: accept the stream, identify the call,
authorise it, build its services, run the conversation, end it.
"""

import contextlib
import dataclasses
import sys

from dotenv import load_dotenv
from fastapi import WebSocket
from loguru import logger
from pipecat.runner.types import RunnerArguments, WebSocketRunnerArguments

from bot_runtime import dev_runner
from bot_runtime.after_call.deliveries import record_sent, retry_the_spool
from bot_runtime.call.eval_call import run_eval, secret_carried
from bot_runtime.call.facts import CallFacts
from bot_runtime.call.phone_call import PhoneCall
from bot_runtime.config.settings import BotSettings, ConfigError, secrets_of
from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.logs import configure_logging
from bot_runtime.startup import prepare
from bot_runtime.twilio.authorization import (
    from_this_machine,
    refusal_reason,
    upgrade_refusal,
)
from bot_runtime.twilio.call_control import confirm_call
from bot_runtime.twilio.stream import EvalConnect, StreamRejected, StreamStart, read_stream_start

# Locally, keys live in .env; on Pipecat Cloud they come from the secret set.
load_dotenv(override=False)
try:
    SETTINGS = BotSettings.from_env()
except ConfigError as error:
    raise SystemExit(f"Configuration error:\n{error}") from None
configure_logging(secrets=secrets_of(SETTINGS), level=SETTINGS.log_level)
# Under the development runner, a busy port is said at once, not after the models load.
if __name__ == "__main__":
    from bot_runtime.dev_runner import refuse_a_busy_port

    refuse_a_busy_port(sys.argv)
prepare(SETTINGS)


async def bot(runner_args: RunnerArguments) -> None:
    """Answer one Twilio Media Stream: the whole life of one phone call."""
    if not isinstance(runner_args, WebSocketRunnerArguments):
        logger.error("This bot answers Twilio Media Streams: run it with `-t twilio`")
        return
    websocket = runner_args.websocket
    # Pipecat Cloud's base image has no start-up hook for us: the first stream starts it there.
    retry_the_spool(SETTINGS)

    # Under the development runner the bot sees the upgrade itself: Twilio signs it.
    local_client = False
    if dev_runner.running():
        problem, local_client = _check_upgrade(websocket)
        if problem:
            logger.warning(f"Refused a stream: {problem}")
            await _close(websocket, code=1008)
            return

    # Accept: Twilio's `connected` and `start` messages come before any audio, with Twilio's
    # SIDs in them (or, under the development runner, a local test client's uuid ids).
    try:
        start = await read_stream_start(websocket, accept_local_test_ids=dev_runner.running())
    except StreamRejected as reason:
        logger.warning(f"Refused a stream that is not a Twilio Media Stream: {reason}")
        await _close(websocket, code=1002)
        return
    # pipecat's eval harness (`pipecat eval run`): the same agent, on the harness's transport.
    if isinstance(start, EvalConnect):
        await run_eval(
            websocket,
            start,
            settings=SETTINGS,
            offered_secret=secret_carried(
                websocket, runner_args.body, dev_runner=dev_runner.running()
            ),
            from_this_machine=local_client,
            handle_sigint=runner_args.handle_sigint,
        )
        return

    # Identify: every log line from here on carries the callSid (checked: Twilio's shape).
    with logger.contextualize(call_sid=start.call_sid):
        settings = _settings_for(start)
        # Authorise before anything costs money: no STT, LLM or TTS connection yet.
        reason = refusal_reason(start, settings)
        if reason:
            logger.warning(f"Refused the stream: {reason}")
            await _close(websocket, code=1008)
            return

        facts = CallFacts.from_parameters(start.custom_parameters)
        logger.info(f"Call started: {facts.for_log()}")

        # Build the services and the pipeline; they connect when the call starts running.
        call = PhoneCall(websocket, start=start, facts=facts, settings=settings)

        # Beside the greeting, ask Twilio whether this call is live on this account (and,
        # without a from_number parameter, who is calling): one that is not ends at once,
        # unless the stream proved itself otherwise (the stream secret, or a local client).
        if not settings.twilio.missing_credentials:
            call.confirm_with_twilio(
                confirm_call(settings.twilio, start.call_sid),
                learn_numbers=facts.from_number is None,
                vouched_for=_vouched_for(settings, local_client=local_client),
            )

        # Run until the call ends: end_call, silence, the time limit, or the caller hanging up.
        await call.run(handle_sigint=runner_args.handle_sigint)

        # On Pipecat Cloud the instance may go once bot() returns: the record's first attempt
        # gets a few seconds (it is spooled already; the hang-up has happened).
        if call.record_delivery is not None:
            await record_sent(call.record_delivery)


def _check_upgrade(websocket: WebSocket) -> tuple[str | None, bool]:
    """Why the upgrade is refused (or None), and whether it came unsigned from this machine."""
    peer = websocket.client.host if websocket.client else None
    query = websocket.url.query
    problem = upgrade_refusal(
        websocket.headers,
        path=websocket.url.path + (f"?{query}" if query else ""),
        peer=peer,
        auth_token=SETTINGS.twilio.auth_token,
    )
    local = "x-twilio-signature" not in websocket.headers and from_this_machine(
        websocket.headers, peer=peer
    )
    return problem, local


def _vouched_for(settings: BotSettings, *, local_client: bool) -> str | None:
    """What vouches for a stream whose call Twilio may not know (a test client's), if anything."""
    if settings.stream_secret:  # Checked by refusal_reason: the stream carried it.
        return "it carried the stream secret"
    if local_client:
        return "it came from this machine"
    return None


def _settings_for(start: StreamStart) -> BotSettings:
    """The settings for this call: a local test client's call gets no Twilio credentials.

    Twilio does not know such a call, so no REST request (lookup, recording,
    transfer, hang-up) is made for it, and no accountSid is expected of it.
    """
    if not start.local_test:
        return SETTINGS
    logger.info("Local test call (uuid ids, development runner): no Twilio REST request")
    twilio = TwilioSettings(phone_number=SETTINGS.twilio.phone_number)
    return dataclasses.replace(SETTINGS, twilio=twilio, record_calls=False)


async def _close(websocket: WebSocket, *, code: int) -> None:
    with contextlib.suppress(RuntimeError):  # The peer may have closed first.
        await websocket.close(code=code)


if __name__ == "__main__":
    from bot_runtime.dev_runner import run_dev_runner

    run_dev_runner(log_secrets=secrets_of(SETTINGS), settings=SETTINGS)
