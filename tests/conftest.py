"""Shared fixtures: loopback fakes of every outside service, and real bot processes using them."""

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from testkit.bot_server import BotServer, start_bot_server
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI, Fakes
from testkit.fakes.business_server import Answer, FakeBusinessServer
from testkit.fakes.otlp import FakeCollector
from testkit.fakes.twilio_rest import FakeTwilio
from testkit.media_stream import TEST_ACCOUNT_SID
from testkit.noise_calls import CALLER_WORDS_PER_SEC, answer_at_length
from testkit.scenario import (
    AGENT_NUMBER,
    AUTH_TOKEN,
    CALLER_NUMBER,
    COLLECTOR_KEY,
    RECORDING_CALLBACK,
    STREAM_SECRET,
    TRANSFER_NUMBER,
    TWILIO_CREDENTIALS,
    WHISPER_URL,
    bot_env,
    records_env,
    scripted_reply,
)


@dataclass
class Bots:
    """Bot processes with different configurations, all talking to the same fakes."""

    standard: BotServer  # Twilio credentials, no stream secret.
    secured: BotServer  # STREAM_SECRET set; a short silence timeout.
    bare: BotServer  # No Twilio credentials at all; short call limit.
    control: BotServer  # Transfers (with a whisper) and recordings; traced, logs at DEBUG.


@pytest.fixture(scope="session")
async def fakes():
    async with AsyncExitStack() as stack:
        yield Fakes(
            deepgram=await stack.enter_async_context(FakeDeepgram()),
            openai=await stack.enter_async_context(FakeOpenAI(responder=scripted_reply)),
            cartesia=await stack.enter_async_context(FakeCartesia()),
            twilio=await stack.enter_async_context(
                FakeTwilio(
                    account_sid=TEST_ACCOUNT_SID,
                    auth_token=AUTH_TOKEN,
                    inbound_numbers=(CALLER_NUMBER, AGENT_NUMBER),
                )
            ),
        )


@pytest.fixture(autouse=True)
def fresh_script(request):
    """Each test scripts the fakes itself; nothing left over from the previous one."""
    if "fakes" not in request.fixturenames:
        return
    fakes: Fakes = request.getfixturevalue("fakes")
    fakes.deepgram.transcripts.clear()
    fakes.deepgram.transcripts_in.clear()
    fakes.openai.responder = scripted_reply


@pytest.fixture(scope="session")
async def records():
    """The business's server that receives every bot's call records (one path per bot)."""
    async with FakeBusinessServer() as server:
        names = ("standard", "secured", "bare", "control", "fragile", "example", "failing")
        for name in (*names, "patient"):
            server.script(f"/calls/{name}", Answer(body={"received": True}))
        yield server


@pytest.fixture(scope="session")
async def collector():
    """The OpenTelemetry collector the control bot sends its calls' traces to."""
    async with FakeCollector() as server:
        yield server


@pytest.fixture(scope="session")
async def bots(fakes, records, collector, tmp_path_factory):
    logs = tmp_path_factory.mktemp("bot-logs")
    configs = {
        "standard": {**bot_env(fakes), **TWILIO_CREDENTIALS},
        "secured": {
            **bot_env(fakes),
            **TWILIO_CREDENTIALS,
            "STREAM_SECRET": STREAM_SECRET,
            "SILENCE_TIMEOUT_SECS": "2",
        },
        "bare": {**bot_env(fakes), "MAX_CALL_SECS": "10", "SILENCE_TIMEOUT_SECS": "60"},
        "control": {
            **bot_env(fakes),
            **TWILIO_CREDENTIALS,
            "TRANSFER_NUMBER": TRANSFER_NUMBER,
            "TRANSFER_WHISPER_URL": WHISPER_URL,
            "RECORD_CALLS": "true",
            "RECORDING_STATUS_CALLBACK": RECORDING_CALLBACK,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={COLLECTOR_KEY}",
            "LOG_LEVEL": "DEBUG",
        },
    }
    servers = await asyncio.gather(
        *(
            start_bot_server(env | records_env(records, name), log_path=logs / f"{name}.log")
            for name, env in configs.items()
        )
    )
    yield Bots(*servers)
    await asyncio.gather(*(server.stop() for server in servers))


@pytest.fixture
def noisy_line(fakes):
    """Fakes for calls with noise on the line: long answers, interims at a speaking rate."""
    answer_at_length(fakes)
    fakes.deepgram.interim_words_per_sec = CALLER_WORDS_PER_SEC
    yield fakes
    fakes.deepgram.interim_words_per_sec = None
    fakes.deepgram.default_transcript = ""
