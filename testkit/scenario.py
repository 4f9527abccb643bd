"""Simulated calls' cast and script: numbers, credentials, the fake LLM's answers, waits."""

import asyncio
import base64
import json
import math
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from testkit.bot_server import BotServer
from testkit.fakes import Fakes, Reply, ToolCall
from testkit.fakes.business_server import FakeBusinessServer, ReceivedRequest
from testkit.fakes.twilio_rest import RecordedRequest
from testkit.media_stream import TEST_ACCOUNT_SID
from testkit.phone_audio import pcm16_secs
from testkit.simulated_caller import SimulatedCaller

# Made-up numbers in the 555 exchange: the caller, the bot's line, and where transfers go.
CALLER_NUMBER = "+14155550123"
AGENT_NUMBER = "+14155550999"
TRANSFER_NUMBER = "+14155550100"
# The customParameters of an inbound call, as the TwiML Bin sends them.
INBOUND = {"from_number": CALLER_NUMBER, "to_number": AGENT_NUMBER}
AUTH_TOKEN = "twilio-test-auth-token"
# What a bot needs to hang up, transfer and record through (fake) Twilio.
TWILIO_CREDENTIALS = {"TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
STREAM_SECRET = "stream-test-secret-5f1c"
COLLECTOR_KEY = "collector-test-key-93ab"  # The OpenTelemetry collector's API key, a header.
# The key the bots sign their call records with, and the receiver checks them with.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"call-records-test-key-0123456789").decode()
WHISPER_URL = "https://handler.twilio.com/twiml/EH0123456789abcdef0123456789abcdef"
RECORDING_CALLBACK = "https://example.com/recordings"
# What the fake LLM answers anything that is not a goodbye or a request for a person.
REPLY = "Sure, let me check that for you."
POLL_SECS = 0.05


def scripted_reply(request: dict[str, Any]) -> Reply | ToolCall:
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
    # What the caller said since the bot last spoke: a line cut into two turns at a pause,
    # whose first reply the caller's next words stopped, is read whole, as a model would.
    unanswered = []
    for message in reversed(request["messages"]):
        if message.get("role") != "user" or not isinstance(message.get("content"), str):
            break
        unanswered.insert(0, message["content"])
    said = " ".join(unanswered).lower()
    if "goodbye" in said:
        return ToolCall("end_call")
    if "real person" in said:
        return ToolCall("transfer_call")
    return Reply(REPLY)


def bot_env(fakes: Fakes) -> dict[str, str]:
    """A bot's environment with every service pointing at its fake."""
    return fakes.service_env() | {"OPENAI_MODEL": "gpt-test"}


def user_text(request: dict[str, Any]) -> str:
    """Everything the caller said, as the LLM saw it in one request."""
    return " ".join(
        m["content"] for m in request["messages"] if m["role"] == "user" and m.get("content")
    )


def rest_requests_for(
    fakes: Fakes, call_sid: str, *, with_fetch: bool = False
) -> list[RecordedRequest]:
    """What the bot asked Twilio's REST API to do to one call.

    Every call with Twilio credentials is fetched once beside the greeting (is it
    live? who is calling?); that fetch is left out unless ``with_fetch``.
    """
    return [
        r for r in fakes.twilio.requests if call_sid in r.path and (with_fetch or r.method != "GET")
    ]


async def hear_greeting(caller: SimulatedCaller, *, timeout_secs: float = 10) -> None:
    """Wait until the bot's greeting has been heard to its end."""
    await caller.wait_for_bot_audio(timeout=timeout_secs)
    await caller.wait_for_bot_silence(timeout=timeout_secs)


def bot_audio_secs(caller: SimulatedCaller, *, since: float, until: float = math.inf) -> float:
    """Seconds of bot audio that arrived between two moments, whatever has played of it."""
    return sum(pcm16_secs(m.pcm) for m in caller.media if since <= m.arrived_at <= until)


async def wait_until(condition: Callable[[], bool], *, timeout_secs: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` did not happen."""
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECS)


async def wait_for_hang_up(fakes: Fakes, call_sid: str, *, timeout_secs: float) -> None:
    """Until the bot has hung the call up through Twilio's REST API."""
    await wait_until(
        lambda: call_sid in fakes.twilio.hangups, timeout_secs=timeout_secs, what="hang-up"
    )


async def wait_for_redirect(fakes: Fakes, call_sid: str, *, timeout_secs: float) -> None:
    """Until the bot has redirected the call (a transfer) through Twilio's REST API."""
    await wait_until(
        lambda: any(sid == call_sid for sid, _ in fakes.twilio.updates),
        timeout_secs=timeout_secs,
        what="the transfer request",
    )


@asynccontextmanager
async def answered_call(
    bot: BotServer, fakes: Fakes, **options: Any
) -> AsyncIterator[SimulatedCaller]:
    """An inbound call to ``bot`` that Twilio's REST API knows about, as a real one would be."""
    async with SimulatedCaller(bot.url, custom_parameters=INBOUND, **options) as caller:
        fakes.twilio.register_call(sid=caller.call_sid, from_=CALLER_NUMBER, to=AGENT_NUMBER)
        yield caller


def records_env(
    records: FakeBusinessServer, bot_name: str, *, spool_dir: Path | None = None
) -> dict[str, str]:
    """What makes a bot send its call records to ``records``, each bot on a path of its own.

    Each bot spools its records in a folder of its own (a fresh temporary one unless
    ``spool_dir`` is given): a bot sends what it finds there at start-up, and another
    bot's records would go to the wrong path.
    """
    folder = spool_dir or Path(tempfile.mkdtemp(prefix=f"call-records-{bot_name}-"))
    return {
        "CALL_WEBHOOK_URL": records.url(f"/calls/{bot_name}"),
        "CALL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CALL_RECORD_SPOOL_DIR": str(folder),
    }


async def call_record(
    records: FakeBusinessServer, call_sid: str, *, timeout_secs: float = 10
) -> dict[str, Any]:
    """The call record a bot sent for ``call_sid``: exactly one, its signature checked.

    Retries of one delivery carry the same webhook-id; a second webhook-id for the
    same call would be a second record.
    """

    def received() -> list[ReceivedRequest]:
        return [
            r for r in records.requests if r.path.startswith("/calls/") and call_sid in str(r.body)
        ]

    await wait_until(lambda: bool(received()), timeout_secs=timeout_secs, what="the call record")
    deliveries = received()
    assert len({r.headers["webhook-id"] for r in deliveries}) == 1, "more than one record"
    document = Webhook(WEBHOOK_SECRET).verify(deliveries[-1].body, deliveries[-1].headers)
    assert document["call_sid"] == call_sid
    return document
