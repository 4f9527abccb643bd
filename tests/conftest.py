"""Shared fixtures: loopback fakes of every outside service, and real bot processes using them."""

import asyncio
import json
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from testkit.bot_server import BotServer, start_bot_server
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI, Fakes, Reply, ToolCall
from testkit.fakes.twilio_rest import FakeTwilio
from testkit.simulated_caller import TEST_ACCOUNT_SID

AUTH_TOKEN = "twilio-test-auth-token"
STREAM_SECRET = "stream-test-secret-5f1c"
CALLER_NUMBER = "+14155550123"
TRANSFER_NUMBER = "+14155550100"
RECORDING_CALLBACK = "https://example.com/recordings"
AGENT_NUMBER = "+14155550999"
REPLY = "Sure, let me check that for you."


def scripted_reply(request: dict) -> Reply | ToolCall:
    """The fake LLM's answers: end the call on a goodbye, otherwise a short reply.

    The voicemail detector's classifier asks for JSON: a greeting that asks to leave a
    message is a voicemail, anything else a person.
    """
    first = request["messages"][0].get("content")
    if isinstance(first, str) and first.startswith("You are a classifier"):
        heard = str(request["messages"][-1].get("content", "")).lower()
        choice = "voicemail" if "leave a message" in heard else "conversation"
        other = "conversation" if choice == "voicemail" else "voicemail"
        return Reply(json.dumps({"choice": choice, "probabilities": {choice: 0.95, other: 0.05}}))
    last = request["messages"][-1]
    said = last.get("content") if last.get("role") == "user" else ""
    if isinstance(said, str) and "goodbye" in said.lower():
        return ToolCall("end_call")
    if isinstance(said, str) and "real person" in said.lower():
        return ToolCall("transfer_call")
    return Reply(REPLY)


@dataclass
class Bots:
    """Bot processes with different configurations, all talking to the same fakes."""

    standard: BotServer  # Twilio credentials, no stream secret.
    secured: BotServer  # STREAM_SECRET set; a short silence timeout.
    bare: BotServer  # No Twilio credentials at all; short call limit.
    control: BotServer  # Transfers and recordings enabled.


@pytest.fixture(scope="session")
async def fakes():
    async with AsyncExitStack() as stack:
        yield Fakes(
            deepgram=await stack.enter_async_context(FakeDeepgram()),
            openai=await stack.enter_async_context(FakeOpenAI(responder=scripted_reply)),
            cartesia=await stack.enter_async_context(FakeCartesia()),
            twilio=await stack.enter_async_context(
                FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=AUTH_TOKEN)
            ),
        )


@pytest.fixture(autouse=True)
def fresh_script(request):
    """Each test scripts the fakes itself; nothing left over from the previous one."""
    if "fakes" not in request.fixturenames:
        return
    fakes: Fakes = request.getfixturevalue("fakes")
    fakes.deepgram.transcripts.clear()
    fakes.openai.responder = scripted_reply


def service_env(fakes: Fakes) -> dict[str, str]:
    return fakes.service_env() | {"OPENAI_MODEL": "gpt-test"}


@pytest.fixture(scope="session")
async def bots(fakes, tmp_path_factory):
    logs = tmp_path_factory.mktemp("bot-logs")
    twilio = {"TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    configs = {
        "standard": {**service_env(fakes), **twilio},
        "secured": {
            **service_env(fakes),
            **twilio,
            "STREAM_SECRET": STREAM_SECRET,
            "SILENCE_TIMEOUT_SECS": "2",
        },
        "bare": {**service_env(fakes), "MAX_CALL_SECS": "10", "SILENCE_TIMEOUT_SECS": "60"},
        "control": {
            **service_env(fakes),
            **twilio,
            "TRANSFER_NUMBER": TRANSFER_NUMBER,
            "RECORD_CALLS": "true",
            "RECORDING_STATUS_CALLBACK": RECORDING_CALLBACK,
        },
    }
    servers = await asyncio.gather(
        *(start_bot_server(env, log_path=logs / f"{name}.log") for name, env in configs.items())
    )
    yield Bots(*servers)
    await asyncio.gather(*(server.stop() for server in servers))
