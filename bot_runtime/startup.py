"""Start-up: what every call shares made ready once, and one line saying what the bot will do."""

import gc
from urllib.parse import urlsplit

import numpy as np
from loguru import logger

from bot_runtime import tracing
from bot_runtime.call.language_switch import detection_warnings
from bot_runtime.call.recorded_prompts import load_prompts
from bot_runtime.config.settings import LOCAL, BotSettings, language_problems, secrets_of
from bot_runtime.services import noise_filter
from bot_runtime.services.build import prepare_services
from bot_runtime.twilio.rest import warm_up_twilio_sdk

# SmolLM2 cannot call functions: declared tools wait for an LLM that can.
NO_LOCAL_TOOLS = (
    "the local LLM cannot call these tools (it only ends calls on a goodbye): set "
    "OPENAI_API_KEY, or OPENAI_BASE_URL for an OpenAI-compatible server with tool calling"
)


def prepare(settings: BotSettings) -> None:
    """Load the recorded prompts, the models and the SDKs now, before the first call.

    Every call shares them; loading them here means a missing prompt stops the bot
    at start-up rather than mid-call, and the first caller waits no longer than the rest.
    """
    load_prompts(default=settings.languages.default, languages=settings.languages.by_code)
    prepare_services(settings)
    if settings.tracing is not None:
        tracing.set_up(
            include_content=settings.tracing.include_content, secrets=secrets_of(settings)
        )
    if not settings.twilio.missing_credentials:  # Without them no call reaches the REST API.
        warm_up_twilio_sdk()
    # numpy imports numpy.ma the first time it takes a percentile, as the barge-in check does
    # with the caller's speech level: that held the loop on the first barge-in of the process.
    np.percentile(np.zeros(2), 90)
    logger.info(describe(settings))
    for warning in [*language_problems(settings)[1], *detection_warnings(settings)]:
        logger.warning(warning)
    if not settings.stream_secret and not settings.twilio.missing_credentials:
        logger.warning(
            "STREAM_SECRET is not set: any stream naming a live call on your Twilio account "
            "is served, whoever opens it; make one with `uv run scripts/render_twiml.py "
            "--new-secret`, set it in .env and the secret set, and render the TwiML Bin again"
        )
    noise_filter.announce()
    if settings.agent.analysis and settings.llm_provider == LOCAL:
        logger.info("Post-call analysis skipped: the local LLM cannot fill the fields reliably")
    # What start-up made (the models, pipecat, the SDKs) lives as long as the process: out
    # of the collector's sight, a full collection walks only what calls made, instead of
    # holding every call's audio for a walk over the whole heap (docs/performance.md).
    gc.collect()
    gc.freeze()


def describe(settings: BotSettings) -> str:
    """What the bot does, in one line (no secret, no full URL: a URL may carry a token)."""
    llm = f"{settings.llm_provider}" + (
        f" ({settings.openai_model})" if settings.llm_provider != LOCAL else " (SmolLM2)"
    )
    parts = [
        f"speech-to-text {settings.stt_provider}, LLM {llm}, text-to-speech {settings.tts_provider}"
    ]
    agent = settings.agent
    if agent.path is not None:
        tools = [spec.name for spec in (*agent.tools, *agent.python_tools)]
        parts.append(
            f"agent file {agent.shown_as}" + (f", tools {', '.join(tools)}" if tools else "")
        )
        if tools and settings.llm_provider == LOCAL:
            parts.append(NO_LOCAL_TOOLS)
    languages = settings.languages
    if languages.declared:
        others = [code for code in languages.by_code if code != languages.default]
        parts.append(
            f"language {languages.default}"
            + (f", also {', '.join(others)}" if others else "")
            + (f", by number for {len(languages.by_number)}" if languages.by_number else "")
        )
    if settings.transfer_number:
        parts.append("transfers on" + (" with a brief" if settings.transfer_whisper_url else ""))
    if settings.call_webhook_url:
        # Only the host: a user:password before it is a credential.
        host = urlsplit(settings.call_webhook_url).netloc.rpartition("@")[2]
        parts.append(f"call records to {host}")
    return "Bot set up: " + "; ".join(parts)
