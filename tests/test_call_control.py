"""Call control through Twilio's REST API: transfers, the keypad and recordings."""

import asyncio
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loguru import logger

from bot_runtime.after_call.summaries import BRIEF_INSTRUCTION
from bot_runtime.config.settings import DEFAULT_GREETING
from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.twilio.call_control import confirm_call
from testkit.bot_server import free_port
from testkit.caller_audio import AUDIO, caller_line
from testkit.fakes import NoChoices, Reply, ToolCall
from testkit.media_stream import TEST_ACCOUNT_SID, new_sid
from testkit.scenario import (
    AGENT_NUMBER,
    AUTH_TOKEN,
    CALLER_NUMBER,
    COLLECTOR_KEY,
    INBOUND,
    RECORDING_CALLBACK,
    TRANSFER_NUMBER,
    WHISPER_URL,
    answered_call,
    bot_audio_secs,
    call_record,
    hear_greeting,
    rest_requests_for,
    scripted_reply,
    wait_for_redirect,
    wait_until,
)
from testkit.simulated_caller import SimulatedCaller


def dialled_with_a_brief(twiml: str) -> str:
    """The brief in a redirect's TwiML: <Dial><Number url="WHISPER?Summary=...">, else fail."""
    dial = ET.fromstring(twiml).find("Dial")
    assert dial is not None, twiml
    number = dial.find("Number")
    assert number is not None and number.text == TRANSFER_NUMBER, twiml
    whisper = urlsplit(number.get("url", ""))
    assert f"{whisper.scheme}://{whisper.netloc}{whisper.path}" == WHISPER_URL, twiml
    (summary,) = parse_qs(whisper.query)["Summary"]
    return summary


async def test_recording_starts_after_the_consent_notice(bots, fakes):
    greetings_before = fakes.cartesia.said.count(DEFAULT_GREETING)
    async with answered_call(bots.control, fakes) as caller:
        await caller.wait_for_bot_audio(timeout=10)
        await wait_until(
            lambda: any(r["call_sid"] == caller.call_sid for r in fakes.twilio.recordings),
            timeout_secs=10,
            what="a recording request",
        )
        requests = rest_requests_for(fakes, caller.call_sid)
        (request,) = [r for r in requests if "Recordings" in r.path]
        assert request.form == {
            "RecordingChannels": "dual",
            "RecordingStatusCallback": RECORDING_CALLBACK,
        }
        # The notice (2.6 s of audio) was heard before the recording started...
        assert caller.start_sent_at is not None
        assert bot_audio_secs(caller, since=caller.start_sent_at, until=request.time) >= 2.0
        # ...and the greeting comes after it.
        await caller.wait_for_bot_audio(after=request.time, timeout=10)
    (recording,) = [r for r in fakes.twilio.recordings if r["call_sid"] == caller.call_sid]
    summary = await bots.control.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert f"recording {recording['sid']}" in summary
    assert fakes.cartesia.said.count(DEFAULT_GREETING) == greetings_before + 1


async def test_transfer_tool_redirects_the_call_briefs_the_person_and_never_hangs_up(
    bots, fakes, records, collector
):
    """Also: the call is one trace at the collector, and its log at DEBUG has the turn
    decisions, with neither holding a number or a secret (nor the trace a word said)."""
    fakes.deepgram.transcripts.append(caller_line("human"))
    async with answered_call(bots.control, fakes) as caller:
        await hear_greeting(caller, timeout_secs=15)
        spoken = await caller.say(AUDIO / "human.wav")
        await wait_for_redirect(fakes, caller.call_sid, timeout_secs=15)
        await caller.wait_closed(timeout=10)  # The bot lets go of the stream.
    await asyncio.sleep(0.5)
    updates = [form for sid, form in fakes.twilio.updates if sid == caller.call_sid]
    assert len(updates) == 1
    brief = dialled_with_a_brief(updates[0]["Twiml"])
    assert caller.call_sid not in fakes.twilio.hangups
    (update,) = [r for r in rest_requests_for(fakes, caller.call_sid) if "Twiml" in r.form]
    # "Connecting you now" (1 s) was heard before the redirect (it may start while the
    # caller is still finishing the sentence: "real person" is enough to act on).
    assert bot_audio_secs(caller, since=spoken.started_at, until=update.time) >= 0.9
    summary = await bots.control.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "ended by transferred (transfer_call tool)" in summary
    # The LLM wrote the brief from what the caller said; the record keeps it.
    brief_request = fakes.openai.requests[-1]
    assert "hand a phone call over" in brief_request["messages"][0]["content"]
    assert (
        "Caller: Can you put me through to a real person" in brief_request["messages"][1]["content"]
    )
    record = await call_record(records, caller.call_sid)
    assert (record["ended_reason"], record["ended_detail"]) == ("transfer", "transfer_call tool")
    assert (record["transfer_to"], record["transfer_summary"]) == (TRANSFER_NUMBER, brief)

    conversation = await collector.conversation(caller.call_sid, timeout_secs=10)
    assert {
        key: conversation.attributes[key]
        for key in ("call.direction", "call.language", "call.eval", "agent.file")
    } == {
        "call.direction": "inbound",
        "call.language": "en",
        "call.eval": False,
        "agent.file": "agent.toml",
    }
    assert conversation.attributes["call.backup_used"] is False
    assert len(conversation.children) >= 2  # the greeting's turn, the caller's
    assert {turn.name for turn in conversation.children} == {"turn"}
    spans = conversation.descendants()
    (tool,) = [span for span in spans if span.name.startswith("execute_tool")]
    assert tool.name == "execute_tool transfer_call"
    assert [span.name for span in spans if tool in span.children] == ["llm"]
    assert {"stt", "tts"} <= {span.name for span in spans}
    assert all(headers["x-api-key"] == COLLECTOR_KEY for headers in collector.headers)
    for text in (text for span in spans for text in span.texts()):
        assert not any(n in text for n in (CALLER_NUMBER, AGENT_NUMBER, TRANSFER_NUMBER)), text
        assert "real person" not in text and DEFAULT_GREETING not in text, text

    log = bots.control.logs()
    decisions = [line for line in log.splitlines() if "| DEBUG   | bot_runtime" in line]
    assert any(f"[{caller.call_sid}] Caller's turn started: their voice" in d for d in decisions)
    assert any(f"[{caller.call_sid}] Caller's turn ended: smart-turn" in d for d in decisions)
    for secret in (CALLER_NUMBER, TRANSFER_NUMBER, AUTH_TOKEN, COLLECTOR_KEY, fakes.openai.api_key):
        assert secret not in log


def brief_without_choices(request: dict[str, Any]) -> Reply | ToolCall | NoChoices:
    """The fake LLM's usual answers, but a completion with no choices for the transfer brief."""
    if request["messages"][0].get("content") == BRIEF_INSTRUCTION:
        return NoChoices()
    return scripted_reply(request)


async def test_a_transfer_whose_brief_fails_and_redirect_goes_unconfirmed_ends_the_call(
    bots, fakes, records
):
    """The LLM answers the brief with no choices, and Twilio's answer to the redirect is an
    HTML page: the caller is still transferred with their own words as the brief, and the
    bot lets the call go without a hang-up (which would drop a caller already redirected)."""
    fakes.openai.responder = brief_without_choices
    fakes.deepgram.transcripts.append(caller_line("human"))
    async with answered_call(bots.control, fakes) as caller:
        fakes.twilio.garble_redirects_of(caller.call_sid)
        await hear_greeting(caller, timeout_secs=15)
        await caller.say(AUDIO / "human.wav")
        await wait_for_redirect(fakes, caller.call_sid, timeout_secs=15)
        await caller.wait_closed(timeout=5)
    (redirect,) = [form for sid, form in fakes.twilio.updates if sid == caller.call_sid]
    # The brief the LLM could not write gave way to the caller's own words.
    brief = dialled_with_a_brief(redirect["Twiml"])
    assert brief.startswith("The caller said: ")
    assert brief.removeprefix("The caller said: ") in caller_line("human")
    logged = [
        await bots.control.wait_for_log(f"[{caller.call_sid}] {start}")
        for start in ("Transfer brief not written", "Transfer to ")
    ]
    assert "(IndexError)" in logged[0]
    assert "unconfirmed (JSONDecodeError: " in logged[1]
    assert "A side task of the call failed" not in bots.control.logs()
    record = await call_record(records, caller.call_sid)
    assert (record["ended_reason"], record["transfer_to"]) == ("transfer", None)


async def test_keypad_zero_transfers_at_any_time(bots, fakes, records):
    async with answered_call(bots.control, fakes) as caller:
        await caller.wait_for_bot_audio(timeout=15)
        await asyncio.sleep(0.5)  # Mid-greeting.
        await caller.press("0")
        await wait_for_redirect(fakes, caller.call_sid, timeout_secs=10)
    updates = [form for sid, form in fakes.twilio.updates if sid == caller.call_sid]
    assert len(updates) == 1
    # Nothing was said yet: the person hears that the caller asked for them.
    assert dialled_with_a_brief(updates[0]["Twiml"]) == "The caller asked for a person."
    assert caller.call_sid not in fakes.twilio.hangups
    record = await call_record(records, caller.call_sid)
    assert record["ended_detail"] == "keypad 0" and record["keypad"][0]["key"] == "0"


async def test_keypad_sequence_reaches_the_llm_as_one_entry(bots, fakes, records):
    requests_before = len(fakes.openai.requests)
    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await hear_greeting(caller)
        pressed_at = time.monotonic()
        await caller.press("4507#")
        await caller.wait_for_bot_audio(after=pressed_at, timeout=10)
    requests = fakes.openai.requests[requests_before:]
    assert requests
    user_messages = [m["content"] for m in requests[-1]["messages"] if m["role"] == "user"]
    assert "Keypad: 4507#" in user_messages
    system = requests[-1]["messages"][0]["content"]
    assert "Keypad" in system
    record = await call_record(records, caller.call_sid)
    assert "".join(press["key"] for press in record["keypad"]) == "4507#"


async def test_without_transfer_number_there_is_no_transfer(bots, fakes):
    requests_before = len(fakes.openai.requests)
    fakes.deepgram.transcripts.append(caller_line("saturday"))
    async with answered_call(bots.standard, fakes) as caller:
        await hear_greeting(caller)
        await caller.press("0")
        await asyncio.sleep(2.5)  # The keypad sequence times out.
        spoken = await caller.say(AUDIO / "saturday.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        assert not caller.closed_by_server
    assert not rest_requests_for(fakes, caller.call_sid)
    tools = {t["function"]["name"] for t in fakes.openai.requests[-1]["tools"]}
    assert tools == {"end_call"}
    assert len(fakes.openai.requests) > requests_before


async def test_a_base_url_is_not_rewritten_by_a_region_in_the_environment(fakes, monkeypatch):
    """TWILIO_REGION and TWILIO_EDGE apply to api.twilio.com only: the SDK must not take
    them from the environment and rewrite TWILIO_API_BASE_URL's host."""
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    sid = fakes.twilio.register_call(from_=CALLER_NUMBER, to=AGENT_NUMBER)
    settings = TwilioSettings(
        account_sid=TEST_ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=fakes.twilio.base_url
    )
    assert await confirm_call(settings, sid) == (CALLER_NUMBER, AGENT_NUMBER)


async def test_a_twilio_that_cannot_be_reached_leaves_the_call_going_and_says_so(fakes):
    """Connection refused, and a Twilio whose answer is too late: no verdict, one warning."""
    said: list[str] = []
    sink = logger.add(lambda message: said.append(str(message)), level="WARNING")
    try:
        for base_url, sid in [
            (f"http://127.0.0.1:{free_port()}", new_sid("CA")),
            (
                fakes.twilio.base_url,
                fakes.twilio.register_call(from_=CALLER_NUMBER, to=AGENT_NUMBER),
            ),
        ]:
            fakes.twilio.answer_slowly_about(sid, 1.0)
            settings = TwilioSettings(
                account_sid=TEST_ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=base_url
            )
            assert await confirm_call(settings, sid, timeout_secs=0.5) is None
    finally:
        logger.remove(sink)
    assert len(said) == 2 and all("Could not confirm the call with Twilio" in s for s in said)
    assert "ClientConnectorError" in said[0] and "TimeoutError" in said[1], said
