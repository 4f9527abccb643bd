"""A voice agent on a Twilio phone number: one call per Media Stream, on Pipecat Cloud or locally.

Pipecat Cloud's /ws/twilio endpoint (and, locally, `uv run bot.py -t twilio`) hands each
Twilio Media Stream to `bot()`. The life of a call: accept the stream, identify the call,
authorise it, build its services, run the conversation, end it.
"""

import contextlib

from dotenv import load_dotenv
from fastapi import WebSocket
from loguru import logger
from pipecat.runner.types import RunnerArguments, WebSocketRunnerArguments

from voice_agent.authorization import refusal_reason
from voice_agent.call_facts import CallFacts, look_up_numbers
from voice_agent.call_log import configure_logging
from voice_agent.config import BotSettings, ConfigError
from voice_agent.phone_call import PhoneCall
from voice_agent.prompts import load_prompts
from voice_agent.services import prepare_services
from voice_agent.twilio_stream import StreamRejected, read_stream_start

# Locally, keys live in .env; on Pipecat Cloud they come from the secret set.
load_dotenv(override=False)
try:
    SETTINGS = BotSettings.from_env()
except ConfigError as error:
    raise SystemExit(f"Configuration error:\n{error}") from None
configure_logging(
    secrets=[
        SETTINGS.openai_api_key,
        SETTINGS.deepgram_api_key,
        SETTINGS.cartesia_api_key,
        SETTINGS.twilio.auth_token,
        SETTINGS.twilio.api_secret,
        SETTINGS.stream_secret,
    ]
)
# Recorded prompts, local models (keyless mode) and the services' SDKs are made ready here,
# before the first call; every call shares them.
load_prompts()
prepare_services(SETTINGS)


async def bot(runner_args: RunnerArguments) -> None:
    """Answer one Twilio Media Stream: the whole life of one phone call."""
    if not isinstance(runner_args, WebSocketRunnerArguments):
        logger.error("This bot answers Twilio Media Streams: run it with `-t twilio`")
        return
    websocket = runner_args.websocket

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


async def _close(websocket: WebSocket, *, code: int) -> None:
    with contextlib.suppress(RuntimeError):  # The peer may have closed first.
        await websocket.close(code=code)


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
