"""The bots a benchmark measures and the loopback services they talk to."""

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.calls import HEARD, REPLY
from benchmarks.process_usage import PeakRss
from benchmarks.reference_bot import generate_reference_bot
from testkit.bot_server import BotServer, start_bot_server
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI, Fakes, Reply, ServiceTiming
from testkit.fakes.business_server import Answer, FakeBusinessServer
from testkit.fakes.otlp import FakeCollector
from testkit.fakes.twilio_rest import FakeTwilio
from testkit.media_stream import TEST_ACCOUNT_SID, new_sid
from testkit.scenario import (
    AGENT_NUMBER,
    AUTH_TOKEN,
    CALLER_NUMBER,
    TWILIO_CREDENTIALS,
    records_env,
)

REPO = Path(__file__).resolve().parents[1]
# The order desk example's analysis fields, filled in as its analysis asks.
ANALYSIS = {"resolved": True, "topic": "opening_hours"}


def new_call(fakes: Fakes) -> str:
    """A callSid Twilio's REST API knows, for a bot that looks its caller up."""
    sid = new_sid("CA")
    fakes.twilio.register_call(sid=sid, from_=CALLER_NUMBER, to=AGENT_NUMBER)
    return sid


def made_its_own_env(fakes: Fakes, business: FakeBusinessServer) -> dict[str, str]:
    """What a business adds to make the bot its own: the worked example's agent file and
    tools (its API on ``business``), backups for the LLM and the voice, call records."""
    business.script("/calls/configured", Answer(status=204, body=b""))
    return {
        "AGENT_FILE": str(REPO / "examples" / "order_desk" / "agent.toml"),
        "ORDERS_API_URL": business.url(),
        "ORDERS_TOKEN": "benchmark-token",
        "BACKUP_OPENAI_BASE_URL": fakes.openai.base_url,
        "BACKUP_OPENAI_API_KEY": fakes.openai.api_key,
        "BACKUP_TTS_PROVIDER": "cartesia",
    } | records_env(business, "configured")


def bot_env(fakes: Fakes, *, keyless: bool) -> dict[str, str]:
    """A bot's environment: the variables a user sets, each service pointing at its fake.

    ``keyless`` leaves the speech services out, so the bot runs its local stack.
    """
    if keyless:
        return TWILIO_CREDENTIALS | {"TWILIO_API_BASE_URL": fakes.twilio.base_url}
    return TWILIO_CREDENTIALS | fakes.service_env()


def answer(request: dict[str, Any]) -> Reply:
    """The fake LLM's answer: the benchmark's reply, or a post-call analysis when asked."""
    if "response_format" in request:
        return Reply(json.dumps({"summary": "Asked when the shop opens.", "fields": ANALYSIS}))
    return Reply(REPLY)


@asynccontextmanager
async def loopback_fakes(timing: ServiceTiming) -> AsyncIterator[Fakes]:
    """Every outside service on loopback, answering on ``timing``."""
    async with AsyncExitStack() as stack:
        yield Fakes(
            deepgram=await stack.enter_async_context(
                FakeDeepgram(default_transcript=HEARD, timing=timing.deepgram)
            ),
            openai=await stack.enter_async_context(
                FakeOpenAI(responder=answer, timing=timing.openai)
            ),
            cartesia=await stack.enter_async_context(FakeCartesia(timing=timing.cartesia)),
            twilio=await stack.enter_async_context(
                FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=AUTH_TOKEN)
            ),
        )


@dataclass
class RunningBot:
    server: BotServer
    rss: PeakRss
    within_capacity: bool = True
    logs_call_summaries: bool = True  # The reference bot logs none.


async def start_bots(
    args: argparse.Namespace, fakes: Fakes, stack: AsyncExitStack, work: Path
) -> dict[str, RunningBot]:
    """Start each bot under the development runner; ``stack`` stops them (on Ctrl-C too)."""
    names = [name for name in args.bots.split(",") if name]
    scripts = {"this": args.this_bot.resolve()}
    if args.baseline_bot:
        scripts["baseline"] = args.baseline_bot.resolve()
    if "reference" in names:
        scripts["reference"] = generate_reference_bot(work, twilio_base_url=fakes.twilio.base_url)
    extra_env = {}
    if "configured" in names:
        scripts["configured"] = scripts["this"]
        business = await stack.enter_async_context(FakeBusinessServer())
        extra_env["configured"] = made_its_own_env(fakes, business)
    if "traced" in names:
        scripts["traced"] = scripts["this"]
        collector = await stack.enter_async_context(FakeCollector())
        extra_env["traced"] = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
    bots = {}
    for name in names:
        env = bot_env(fakes, keyless=args.local) | extra_env.get(name, {})
        if name == "baseline":
            env |= args.baseline_env
        server = await start_bot_server(env, log_path=work / f"{name}.log", script=scripts[name])
        stack.push_async_callback(server.stop)
        rss = PeakRss(server.process.pid)
        sampler = asyncio.ensure_future(rss.sample_forever())
        stack.callback(sampler.cancel)
        bots[name] = RunningBot(server, rss, logs_call_summaries=name != "reference")
    return bots
