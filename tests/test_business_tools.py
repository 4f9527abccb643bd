"""The business's own tools, declared in the agent file (HTTP) or in Python, on real calls."""

import asyncio
import importlib.util
import json
from contextlib import asynccontextmanager

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from openai import AsyncOpenAI

from bot_runtime.config.providers import DEFAULT_CARTESIA_VOICE_ID
from bot_runtime.json_safe import json_safe
from testkit.bot_server import REPO, free_port, start_bot_server
from testkit.caller_audio import AUDIO
from testkit.eval_harness import documented_command, run_harness
from testkit.fakes import NoChoices, Reply, Spoken, ToolCall
from testkit.fakes.business_server import Answer, FakeBusinessServer
from testkit.scenario import (
    AGENT_NUMBER,
    CALLER_NUMBER,
    INBOUND,
    TWILIO_CREDENTIALS,
    bot_env,
    call_record,
    hear_greeting,
    records_env,
    wait_until,
)
from testkit.simulated_caller import SimulatedCaller

ORDERS_TOKEN = "orders-token-7c1e9a"
PARAMETERS = {**INBOUND, "customer_id": "cust-42", "stream_secret": "never-forwarded"}
EXAMPLE_AGENT = REPO / "examples" / "order_desk" / "agent.toml"
SPANISH_NUMBER = "+34911234567"
SPANISH_VOICE = "spanish-voice-0c1e"
SPANISH_GREETING = "Hola, ¿en qué puedo ayudarle?"
# The failing tools' agent also speaks Spanish (and listens for it on calls nothing chose a
# language for): its tools' results are English.
SPANISH_TOO = f"""
analysis_language = "en"
detect_language = true

[languages.es]
greeting = "{SPANISH_GREETING}"
goodbye = "Gracias por llamar. ¡Adiós!"
silence_prompt = "¿Sigue ahí?"
voicemail_message = "Hola, llámenos cuando pueda. Adiós."
voice = "{SPANISH_VOICE}"
prompt = "Trate al cliente de usted."

[numbers]
"+34 911 234 567" = "es"

[analysis]
summary = "In one sentence: what the caller wanted."

[analysis.fields.resolved]
type = "boolean"

[analysis.fields.topic]
enum = ["order", "opening_hours", "other"]
"""
FAILING_TOOLS = """
[[tools]]
name = "slow_lookup"
description = "A lookup that takes too long."
url = "${ORDERS_API_URL}/slow"
timeout_secs = 1

[[tools]]
name = "broken_lookup"
description = "A lookup whose server fails."
url = "${ORDERS_API_URL}/broken"

[[tools]]
name = "offline_lookup"
description = "A lookup whose server is down."
url = "http://127.0.0.1:${OFFLINE_PORT}/orders"

[[tools]]
name = "moved_lookup"
description = "A lookup whose service redirects to another host."
url = "${ORDERS_API_URL}/moved"
headers = { X-Api-Key = "${ORDERS_TOKEN}" }

[[tools]]
name = "renamed_lookup"
description = "A lookup whose service redirects to another path on its own host."
url = "${ORDERS_API_URL}/renamed"
headers = { X-Api-Key = "${ORDERS_TOKEN}" }

[[tools]]
name = "garbled_lookup"
description = "A lookup whose server answers garbage."
url = "${ORDERS_API_URL}/garbled"
method = "GET"

[tools.parameters.order_id]
type = "string"
required = true
"""
# A Python tool written with a blocking call, which the agent_tools.py template warns against:
# it holds the bot's event loop, and every call on the process goes silent meanwhile. And one
# that logs its own failure's traceback, with the caller's number and a token in its variables.
PYTHON_TOOLS = """
import os
import time
from datetime import date
from decimal import Decimal

from loguru import logger

from bot_runtime.tools.python import CallInfo, tool


@tool
async def stuck_lookup(call: CallInfo) -> str:
    \"\"\"A lookup that blocks the event loop.\"\"\"
    time.sleep(0.4)
    return "found"


def _ask_crm(number: str, token: str) -> str:
    raise LookupError("the CRM is down")


@tool
async def crashing_lookup(call: CallInfo) -> str:
    \"\"\"A lookup whose code fails and logs why.\"\"\"
    token = os.environ["ORDERS_TOKEN"]
    try:
        return _ask_crm(call.from_number, token)
    except LookupError:
        logger.exception("The CRM lookup failed")
        raise


@tool
async def delivery_lookup(call: CallInfo) -> dict:
    \"\"\"A lookup that returns what a database driver gives: a date, a decimal, a set.\"\"\"
    return {"due": date(2026, 12, 24), "price": Decimal("12.50"), "sizes": {"9", "10", "11"}}
"""
# What the caller says (the fake STT's transcript) -> the tool the fake LLM calls.
ROUTES = {
    "order 4567": ToolCall("lookup_order", {"order_id": "4567"}),
    "order forty": ToolCall("lookup_order", {"order_id": 40}),  # not a string: refused
    "open on Saturday": ToolCall("check_opening_hours", {"day": "Saturday"}),
    "slow": ToolCall("slow_lookup"),
    "broken": ToolCall("broken_lookup"),
    "offline": ToolCall("offline_lookup"),
    "garbled": ToolCall("garbled_lookup", {"order_id": "1"}),
    "stuck": ToolCall("stuck_lookup"),
    "crashing": ToolCall("crashing_lookup"),
    "moved": ToolCall("moved_lookup"),
    "renamed": ToolCall("renamed_lookup"),
    "mi pedido": ToolCall("renamed_lookup"),
    "delivery": ToolCall("delivery_lookup"),
}


# delivery_lookup's answer as JSON: the date in ISO 8601, the decimal as its digits (a float
# would change them), the set sorted.
DELIVERY = {"due": "2026-12-24", "price": "12.50", "sizes": ["10", "11", "9"]}
ANALYSIS = {
    "summary": "Asked about an order. It has shipped.",
    "fields": {"resolved": True, "topic": "order"},
}


def order_desk_llm(request: dict) -> Reply | ToolCall:
    """Calls the tool the caller's words ask for; then reads its result back to the caller, in
    Spanish when the request ends by asking for Spanish (the bot's reminder after a tool).

    Asked for the post-call analysis (structured output), it fills the example's fields.
    """
    if "response_format" in request:
        return Reply(json.dumps(ANALYSIS))
    *_, last = [m for m in request["messages"] if m["role"] != "system"]
    reminder = request["messages"][-1]["content"] if last is not request["messages"][-1] else ""
    if last["role"] == "tool":
        if "Spanish" in reminder:
            return Reply(f"Esto es lo que encontré: {last['content']}")
        # A failed tool's result tells the LLM what to say: said alone, it keeps calls short.
        if "could not be done now" in last["content"]:
            return Reply("Sorry, that could not be done now.")
        return Reply(f"Here is what I found: {last['content']}")
    said = last.get("content") if last["role"] == "user" else ""
    for words, tool_call in ROUTES.items():
        if isinstance(said, str) and words in said:
            return tool_call
    return Reply("How can I help?")


@pytest.fixture(scope="module")
async def orders_api():
    async with FakeBusinessServer() as server:
        yield server


@pytest.fixture(scope="module")
async def order_desk(fakes, orders_api, records, tmp_path_factory):
    """Two bots on the fakes: the repo's example agent, and one with tools that fail."""
    folder = tmp_path_factory.mktemp("agents")
    (folder / "agent.toml").write_text(SPANISH_TOO + FAILING_TOOLS)
    (folder / "agent_tools.py").write_text(PYTHON_TOOLS)
    env = (
        bot_env(fakes)
        | TWILIO_CREDENTIALS
        | {
            "ORDERS_API_URL": orders_api.url(),
            "ORDERS_TOKEN": ORDERS_TOKEN,
            "OFFLINE_PORT": str(free_port()),  # Nothing listens there: connection refused.
        }
    )
    example, failing = await asyncio.gather(
        start_bot_server(
            env | records_env(records, "example") | {"AGENT_FILE": str(EXAMPLE_AGENT)},
            log_path=folder / "example.log",
        ),
        start_bot_server(
            env | records_env(records, "failing") | {"AGENT_FILE": str(folder / "agent.toml")},
            log_path=folder / "failing.log",
        ),
    )
    yield example, failing
    await asyncio.gather(example.stop(), failing.stop())


@asynccontextmanager
async def greeted_call(bot):
    async with SimulatedCaller(bot.url, custom_parameters=PARAMETERS) as caller:
        await hear_greeting(caller)
        yield caller


async def ask(caller: SimulatedCaller, fakes, words: str) -> float:
    """Say a line the STT hears as ``words``; return how long the caller waited for an answer."""
    fakes.deepgram.transcripts.append(words)
    spoken = await caller.say(AUDIO / "saturday.wav")
    heard_at = await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
    await caller.wait_for_bot_silence(timeout=15)
    return heard_at - spoken.ended_at


def last_tool_result(fakes) -> dict:
    """The newest tool result the LLM was given."""
    messages = fakes.openai.requests[-1]["messages"]
    return json.loads([m for m in messages if m["role"] == "tool"][-1]["content"])


async def test_declared_and_python_tools_answer_the_caller(fakes, orders_api, order_desk, records):
    fakes.openai.responder = order_desk_llm
    orders_api.script(
        "/orders/status",
        Answer(body={"order_id": "4567", "status": "shipped"}),
        Answer(body={"order_id": "4567", "status": "packed"}, delay_secs=1.8),
    )
    example, _ = order_desk
    async with greeted_call(example) as caller:
        # A declared tool: the request carries the arguments, the call's facts, the token.
        await ask(caller, fakes, "Where is order 4567?")
        (request,) = orders_api.requests_to("/orders/status")
        assert request.method == "POST"
        assert request.headers["Authorization"] == f"Bearer {ORDERS_TOKEN}"
        assert request.json() == {
            "tool": "lookup_order",
            "arguments": {"order_id": "4567"},
            "call": {
                "call_sid": caller.call_sid,
                "direction": "inbound",
                "from": CALLER_NUMBER,
                "to": AGENT_NUMBER,
                "parameters": {**INBOUND, "customer_id": "cust-42"},
            },
        }
        assert last_tool_result(fakes) == {"order_id": "4567", "status": "shipped"}
        assert "shipped" in fakes.cartesia.said[-1]  # The answer, made of the result.

        # A Python tool, from the example's agent_tools.py.
        await ask(caller, fakes, "What time do you open on Saturday?")
        assert last_tool_result(fakes) == {"day": "Saturday", "hours": "10 am to 4 pm"}
        tools = {t["function"]["name"] for t in fakes.openai.requests[-1]["tools"]}
        assert tools == {"end_call", "lookup_order", "check_opening_hours"}

        # Bad arguments never reach the API; the LLM hears why and answers at once.
        waited = await ask(caller, fakes, "Check order forty please")
        assert len(orders_api.requests_to("/orders/status")) == 1
        error = last_tool_result(fakes)["error"]
        assert "invalid arguments" in error and "order_id" in error
        assert waited < 2.5

        # A slow API: the filler is said while it works, then the answer.
        spoken_before = len(fakes.cartesia.said)
        waited = await ask(caller, fakes, "Where is order 4567?")
        # A context's text grows sentence by sentence: wait for the answer's result in it.
        await wait_until(
            lambda: "packed" in " ".join(fakes.cartesia.said[spoken_before + 1 :]),
            timeout_secs=10,
            what="the answer after the filler",
        )
    spoken = fakes.cartesia.said[spoken_before:]
    assert spoken[0] == "One moment, let me check." and "packed" in " ".join(spoken[1:])
    assert waited < 1.8  # The filler came before the API's answer.
    assert ORDERS_TOKEN not in example.logs()
    # The call record has each tool call, with its result or what went wrong, and the analysis.
    record = await call_record(records, caller.call_sid)
    calls = [
        (c["name"], c["arguments"], c.get("result"), "error" in c) for c in record["tool_calls"]
    ]
    assert calls == [
        ("lookup_order", {"order_id": "4567"}, {"order_id": "4567", "status": "shipped"}, False),
        (
            "check_opening_hours",
            {"day": "Saturday"},
            {"day": "Saturday", "hours": "10 am to 4 pm"},
            False,
        ),
        ("lookup_order", {"order_id": 40}, None, True),
        ("lookup_order", {"order_id": "4567"}, {"order_id": "4567", "status": "packed"}, False),
    ]
    assert record["tool_calls"][-1]["ms"] >= 1800
    assert record["analysis"] == ANALYSIS
    analysis_request = fakes.openai.requests[-1]
    assert analysis_request["response_format"]["json_schema"]["strict"] is True
    assert "Where is order 4567?" in analysis_request["messages"][1]["content"]


async def test_pipecat_eval_passes_the_order_desks_scenarios(
    fakes, orders_api, order_desk, records, tmp_path
):
    """The command docs/evals.md gives, against the order desk's agent: its orders API the
    loopback one, as a stand-in must be; the fake LLM calls the tool the caller's words ask for."""
    fakes.openai.responder = order_desk_llm
    orders_api.script(
        "/orders/status", Answer(body={"order_id": "4567", "status": "shipped", "eta": "Thu"})
    )
    example, _ = order_desk
    asked_before = len(orders_api.requests_to("/orders/status"))
    run = await run_harness(
        documented_command("docs/evals.md", "examples/order_desk/evals/"),
        bot_url=example.url,
        logs=tmp_path,
    )
    assert run.code == 0 and "2/2 passed" in run.out, run.out
    (request,) = orders_api.requests_to("/orders/status")[asked_before:]
    assert request.json()["arguments"] == {"order_id": "4567"}
    assert request.json()["call"]["call_sid"].startswith("eval-")
    assert "Tool check_opening_hours answered" in example.logs()
    assert not [r.path for r in fakes.twilio.requests if "eval-" in r.path]
    assert not [r.path for r in records.requests if b"eval-" in r.body]


@pytest.mark.parametrize(
    "answer",
    [
        Reply(json.dumps({"summary": "Fine.", "fields": {"resolved": "yes", "topic": "x"}})),
        NoChoices(),  # An exception the analysis did not expect (IndexError) used to lose it.
    ],
    ids=["does not fit the fields", "empty choices"],
)
async def test_an_analysis_that_fails_still_delivers_the_record(fakes, order_desk, records, answer):
    def wrong_analysis(request: dict) -> Reply | NoChoices:
        if "response_format" in request:
            return answer
        return Reply("How can I help?")

    fakes.openai.responder = wrong_analysis
    example, _ = order_desk
    async with greeted_call(example) as caller:
        pass
    record = await call_record(records, caller.call_sid, timeout_secs=15)
    assert record["analysis"]["error"].startswith("analysis failed")
    assert record["analysis"]["fields"] is None and record["ended_reason"] == "caller_hung_up"


async def test_failing_tools_still_get_the_caller_an_answer(fakes, orders_api, order_desk, records):
    fakes.openai.responder = order_desk_llm
    orders_api.script("/slow", Answer(body={"status": "late"}, delay_secs=3))
    orders_api.script("/broken", Answer(status=500, body="Internal Server Error"))
    orders_api.script("/garbled", Answer(body=b"\xff\xfe{", content_type="application/json"))
    orders_api.script("/renamed", Answer(status=307, headers={"Location": "/orders/renamed"}))
    orders_api.script("/orders/renamed", Answer(body={"status": "found"}))
    _, failing = order_desk
    sessions_before, contexts_before = len(fakes.deepgram.sessions), len(fakes.cartesia.contexts)
    # Another host (here another port): the tool's token and its body must never go there.
    async with FakeBusinessServer() as elsewhere, greeted_call(failing) as caller:
        orders_api.script(
            "/moved", Answer(status=307, headers={"Location": elsewhere.url("/orders")})
        )
        for words, reason in [
            ("It is slow", "no answer within 1 s"),
            ("It is broken", "the service answered HTTP 500"),
            ("It is offline", "could not connect to the service"),
            ("It is garbled", "the answer could not be read"),
            ("It has moved", "redirected to another scheme, host or port"),
            ("It is crashing", "it raised LookupError"),
        ]:
            waited = await ask(caller, fakes, words)
            assert reason in last_tool_result(fakes)["error"], words
            # The caller heard the LLM say so; nothing was left hanging.
            assert "could not be done now" in fakes.cartesia.said[-1], words
            assert waited < 2.5, words
        # A redirect on the service's own host is followed: a 307 keeps the method and body.
        await ask(caller, fakes, "It was renamed")
        assert last_tool_result(fakes) == {"status": "found"}
        # A Python tool's date, decimal and set reach the LLM as JSON, and the caller hears them.
        await ask(caller, fakes, "When is my delivery?")
        assert last_tool_result(fakes) == DELIVERY
        assert "2026-12-24" in fakes.cartesia.said[-1]
        # A tool that blocks the event loop, twice: the operator is told once, at the end.
        for _ in range(2):
            await ask(caller, fakes, "It is stuck")
            assert last_tool_result(fakes) == "found"
    assert elsewhere.requests == []
    (renamed,) = orders_api.requests_to("/orders/renamed")
    assert renamed.method == "POST" and renamed.headers["X-Api-Key"] == ORDERS_TOKEN
    assert renamed.json()["call"]["call_sid"] == caller.call_sid
    # A GET tool sends the arguments and the call's sid as query parameters.
    (request,) = orders_api.requests_to("/garbled")
    assert request.method == "GET"
    assert request.query == {"order_id": "1", "call_sid": caller.call_sid}
    summary = await failing.wait_for_log(f"[{caller.call_sid}] Call summary:")
    logs = failing.logs()
    warnings = [
        line
        for line in logs.splitlines()
        if f"[{caller.call_sid}] The event loop was blocked for" in line
    ]
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings
    blocked_ms = int(warnings[0].split("blocked for ")[1].split(" ms")[0])
    assert blocked_ms >= 300 and f"loop lag max {blocked_ms} ms" in summary
    # The only traceback is the one the business's tool logged, without its variables' values.
    assert logs.count("Traceback") == 1 and "The CRM lookup failed" in logs
    assert CALLER_NUMBER not in logs and ORDERS_TOKEN not in logs
    record = await call_record(records, caller.call_sid)
    (delivery,) = [c for c in record["tool_calls"] if c["name"] == "delivery_lookup"]
    assert delivery["result"] == DELIVERY
    # The agent listens for its callers' language: this one spoke English throughout, so the
    # call stayed English on Deepgram's multilingual model, with the English voice.
    assert [s.params["language"] for s in fakes.deepgram.sessions[sessions_before:]] == ["multi"]
    contexts = list(fakes.cartesia.contexts.values())[contexts_before:]
    assert {(c.language, c.voice_id) for c in contexts} == {("en", DEFAULT_CARTESIA_VOICE_ID)}
    assert record["language"] == {"code": "en", "chosen_by": "default", "switched_from": None}
    assert "switched to" not in logs


async def test_a_spanish_call_is_spanish_from_greeting_to_record(
    fakes, orders_api, order_desk, records
):
    """Chosen by the language parameter, then by the number called: Spanish words, voice and
    speech-to-text for the whole call, and a reply in Spanish after an English tool result."""
    fakes.openai.responder = order_desk_llm
    orders_api.script("/renamed", Answer(status=307, headers={"Location": "/orders/renamed"}))
    orders_api.script("/orders/renamed", Answer(body={"status": "found"}))
    fakes.deepgram.transcripts_in["es"] = ["¿Dónde está mi pedido?"]
    _, bot = order_desk
    by_parameter = {**PARAMETERS, "language": "es"}
    by_number = {"from_number": CALLER_NUMBER, "to_number": SPANISH_NUMBER}
    for parameters, chosen_by in [(by_parameter, "parameter"), (by_number, "called number")]:
        contexts_before = len(fakes.cartesia.contexts)
        async with SimulatedCaller(bot.url, custom_parameters=parameters) as caller:
            await hear_greeting(caller)
            if chosen_by == "parameter":
                spoken = await caller.say(AUDIO / "saturday.wav")
                await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
                await caller.wait_for_bot_silence(timeout=15)
                # The tool's result is English; the request for the reply ends by asking for
                # Spanish, and the system prompt says so with the language's own line.
                request = fakes.openai.requests[-1]
                assert request["messages"][-1] == {
                    "role": "system",
                    "content": "Answer the caller in Spanish (es), whatever language the "
                    "result is in.",
                }
                assert request["messages"][-2]["content"] == '{"status": "found"}'
                instruction = request["messages"][0]["content"]
                assert "This call is in Spanish (es)." in instruction
                assert instruction.endswith("Trate al cliente de usted.")
                assert "language: es" not in instruction  # A choice, not a fact about the call.
        contexts = list(fakes.cartesia.contexts.values())[contexts_before:]
        assert contexts[0].spoken.strip() == SPANISH_GREETING
        assert {(c.language, c.voice_id) for c in contexts} == {("es", SPANISH_VOICE)}
        session = fakes.deepgram.sessions[-1]
        assert (session.language, session.params["model"]) == ("es", "nova-3-general")
        record = await call_record(records, caller.call_sid)
        assert record["language"] == {"code": "es", "chosen_by": chosen_by, "switched_from": None}
        assert "Call language: Spanish (es), chosen by" in bot.logs()
        if chosen_by == "parameter":
            assert contexts[-1].spoken.strip() == 'Esto es lo que encontré: {"status": "found"}'
            assert record["transcript"][1]["text"] == "¿Dónde está mi pedido?"
    # The operator reads the analysis in the agent file's analysis_language.
    analysis = [r for r in fakes.openai.requests if "response_format" in r][-1]
    assert (
        "Write in English (en), whatever language the call was in"
        in (analysis["messages"][0]["content"])
    )


async def test_a_caller_heard_speaking_spanish_switches_the_call_to_spanish_once(
    fakes, order_desk, records
):
    """A call nothing chose a language for starts in the default one, English, on Deepgram's
    multilingual model; the caller's first Spanish words switch speech-to-text, the voice
    and the LLM's instruction to Spanish before the reply to them, once."""
    _, bot = order_desk
    fakes.deepgram.transcripts.append(Spoken("Quisiera hablar con una persona.", "es"))
    sessions_before, contexts_before = len(fakes.deepgram.sessions), len(fakes.cartesia.contexts)
    requests_before = len(fakes.openai.requests)
    async with greeted_call(bot) as caller:
        spoken = await caller.say(AUDIO / "saturday.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)

    # Deepgram: the multilingual model, hinted with the declared languages, then (once the
    # caller's turn ended) Spanish on the language's own model; no other switch.
    sessions = fakes.deepgram.sessions[sessions_before:]
    assert [(s.params["language"], s.params["model"]) for s in sessions] == [
        ("multi", "nova-3"),
        ("es", "nova-3-general"),
    ]
    assert sessions[0].params["language_hint"] in ("en", "es")
    greeting, *replies = list(fakes.cartesia.contexts.values())[contexts_before:]
    assert (greeting.language, greeting.voice_id) == ("en", DEFAULT_CARTESIA_VOICE_ID)
    assert replies and {(c.language, c.voice_id) for c in replies} == {("es", SPANISH_VOICE)}
    # The reply to those very words was asked for in Spanish.
    requests = fakes.openai.requests[requests_before:]
    assert requests[-1]["messages"][-1]["content"] == "Quisiera hablar con una persona."
    assert all("This call is in Spanish (es)." in r["messages"][0]["content"] for r in requests)
    record = await call_record(records, caller.call_sid)
    assert record["language"] == {"code": "es", "chosen_by": "detected", "switched_from": "en"}
    switches = [line for line in bot.logs().splitlines() if "switched to" in line]
    assert len(switches) == 1, switches
    assert switches[0].endswith(
        f"[{caller.call_sid}] Call language: switched to Spanish (es) from English (en), "
        "heard in the caller's words"
    )


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.times()
    | st.timedeltas()
    | st.decimals()
    | st.uuids()
    | st.binary()
)


@given(
    st.recursive(
        _LEAVES | st.sets(st.integers() | st.text()) | st.frozensets(st.dates()),
        lambda inner: (
            st.lists(inner)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text() | st.integers() | st.dates(), inner)
        ),
        max_leaves=20,
    )
)
def test_whatever_a_python_tool_returns_becomes_json(value):
    safe = json_safe(value)
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe


async def test_the_order_desk_stand_in_calls_the_tools_and_answers_as_the_api():
    """The keyless recipe of the README: an LLM stand-in that calls the order desk's tools,
    spoken to through the OpenAI SDK as the bot does, and the orders API it calls."""
    path = REPO / "examples" / "order_desk" / "stand_in.py"
    spec = importlib.util.spec_from_file_location("stand_in", path)
    assert spec is not None and spec.loader is not None
    stand_in = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stand_in)
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("end_call", "lookup_order", "check_opening_hours")
    ]

    async with TestServer(stand_in.create_app(), host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        llm = AsyncOpenAI(api_key="none", base_url=f"{base}/v1")

        async def asked(*messages: dict) -> tuple[str, list]:
            stream = await llm.chat.completions.create(
                model="any", messages=list(messages), tools=tools, stream=True
            )
            text, calls = "", []
            async for chunk in stream:
                delta = chunk.choices[0].delta
                text += delta.content or ""
                calls += [
                    (c.function.name, json.loads(c.function.arguments))
                    for c in delta.tool_calls or []
                ]
            return text, calls

        user = {"role": "user"}
        assert await asked(user | {"content": "Where is my order four five six seven?"}) == (
            "",
            [("lookup_order", {"order_id": "4567"})],
        )
        assert (await asked(user | {"content": "Are you open on Saturday?"}))[1] == [
            ("check_opening_hours", {"day": "Saturday"})
        ]
        assert (await asked(user | {"content": "OK, bye!"}))[1] == [("end_call", {})]
        async with ClientSession() as session:
            body = {"tool": "lookup_order", "arguments": {"order_id": "4567"}}
            async with session.post(f"{base}/orders/status", json=body) as refused:
                assert refused.status == 401  # The declared header carries the token.
            headers = {"Authorization": f"Bearer {stand_in.TOKEN}"}
            async with session.post(f"{base}/orders/status", json=body, headers=headers) as answer:
                result = await answer.text()
        text, _ = await asked({"role": "tool", "tool_call_id": "call_1", "content": result})
        assert text == "Order 4567 has shipped, arriving Thursday."
