"""A voice agent on a Twilio phone number: one call per Media Stream, on Pipecat Cloud or locally.

Pipecat Cloud's /ws/twilio endpoint (and, locally, `uv run bot.py -t twilio`) hands each
Twilio Media Stream to `bot()`. The life of a call: accept the stream, identify the call,
authorise it, build its services, run the conversation, end it.
"""

import contextlib
import sys

from dotenv import load_dotenv
from fastapi import WebSocket
from loguru import logger
from pipecat.runner.types import RunnerArguments, WebSocketRunnerArguments

from bot_runtime.after_call.deliveries import record_sent, retry_the_spool
from bot_runtime.call.facts import CallFacts
from bot_runtime.call.phone_call import PhoneCall
from bot_runtime.config.settings import BotSettings, ConfigError, secrets_of
from bot_runtime.logs import configure_logging
from bot_runtime.startup import prepare
from bot_runtime.twilio.authorization import refusal_reason
from bot_runtime.twilio.call_control import look_up_numbers
from bot_runtime.twilio.stream import StreamRejected, read_stream_start

# Locally, keys live in .env; on Pipecat Cloud they come from the secret set.
load_dotenv(override=False)
try:
    SETTINGS = BotSettings.from_env()
except ConfigError as error:
    raise SystemExit(f"Configuration error:\n{error}") from None
configure_logging(secrets=secrets_of(SETTINGS))
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

    # Accept: Twilio's `connected` and `start` messages come before any audio.
    try:
        start = await read_stream_start(websocket)
    except StreamRejected as reason:
        logger.warning(f"Refused a stream that is not a Twilio Media Stream: {reason}")
        await _close(websocket, code=1002)
        return

    # Identify: every log line from here on carries the callSid.
    with logger.contextualize(call_sid=start.call_sid):
        # Authorise before anything costs money: no STT, LLM or TTS connection yet.
        reason = refusal_reason(start, SETTINGS)
        if reason:
            logger.warning(f"Refused the stream: {reason}")
            await _close(websocket, code=1008)
            return

        facts = CallFacts.from_parameters(start.custom_parameters)
        logger.info(f"Call started: {facts.for_log()}")

        # Build the services and the pipeline; they connect when the call starts running.
        call = PhoneCall(websocket, start=start, facts=facts, settings=SETTINGS)

        # Without a from_number parameter, ask Twilio who is calling, beside the greeting.
        if facts.from_number is None:
            call.learn_caller_numbers(look_up_numbers(SETTINGS.twilio, start.call_sid))

        # Run until the call ends: end_call, silence, the time limit, or the caller hanging up.
        await call.run(handle_sigint=runner_args.handle_sigint)

        # On Pipecat Cloud the instance may go once bot() returns: the record's first attempt
        # gets a few seconds (it is spooled already; the hang-up has happened).
        if call.record_delivery is not None:
            await record_sent(call.record_delivery)


async def _close(websocket: WebSocket, *, code: int) -> None:
    with contextlib.suppress(RuntimeError):  # The peer may have closed first.
        await websocket.close(code=code)


if __name__ == "__main__":
    from bot_runtime.dev_runner import run_dev_runner

    run_dev_runner(log_secrets=secrets_of(SETTINGS), settings=SETTINGS)
