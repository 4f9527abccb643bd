"""Stream security: refused streams, malformed input that never takes a call down, clean logs."""

import base64
import json

from testkit.caller_audio import AUDIO, caller_line
from testkit.media_stream import TEST_ACCOUNT_SID
from testkit.scenario import (
    AUTH_TOKEN,
    CALLER_NUMBER,
    INBOUND,
    STREAM_SECRET,
    hear_greeting,
    user_text,
    wait_until,
)
from testkit.simulated_caller import SimulatedCaller


async def test_stream_from_another_account_is_refused_before_any_service_connection(bots, fakes):
    before = fakes.connections()
    other_account = "AC" + "9" * 32
    async with SimulatedCaller(
        bots.standard.url, custom_parameters=INBOUND, account_sid=other_account
    ) as caller:
        await caller.wait_closed(timeout=5)
    assert caller.closed_by_server and caller.close_code == 1008
    assert not caller.media
    assert fakes.connections() == before
    line = await bots.standard.wait_for_log(f"[{caller.call_sid}] Refused the stream")
    assert "accountSid does not match TWILIO_ACCOUNT_SID" in line


async def test_stream_secret_is_required_when_configured(bots, fakes):
    before = fakes.connections()
    for parameters, reason in [
        (INBOUND, "'stream_secret' parameter is missing"),
        ({**INBOUND, "stream_secret": "guess"}, "'stream_secret' parameter is wrong"),
    ]:
        async with SimulatedCaller(bots.secured.url, custom_parameters=parameters) as caller:
            await caller.wait_closed(timeout=5)
        assert caller.close_code == 1008
        line = await bots.secured.wait_for_log(f"[{caller.call_sid}] Refused the stream")
        assert reason in line
    assert fakes.connections() == before

    parameters = {**INBOUND, "stream_secret": STREAM_SECRET}
    async with SimulatedCaller(bots.secured.url, custom_parameters=parameters) as caller:
        await caller.wait_for_bot_audio(timeout=10)
    assert STREAM_SECRET not in bots.secured.logs()
    assert all(STREAM_SECRET not in str(r["messages"]) for r in fakes.openai.requests)


async def test_malformed_handshakes_are_refused_and_the_next_call_works(bots):
    start = {
        "event": "start",
        "streamSid": "MZ" + "1" * 32,
        "start": {"streamSid": "MZ" + "1" * 32, "accountSid": TEST_ACCOUNT_SID},
    }
    bad_openings = [
        "this is not json",
        b"\x00\x01binary",
        '{"event": "media", "media": {"payload": "AAAA"}}',
        '{"event": "hello"}',
        '["a", "list"]',
        json.dumps(start),  # no callSid
        "x" * 1_000_000,
    ]
    for opening in bad_openings:
        async with SimulatedCaller(bots.standard.url, handshake=False) as caller:
            await caller.send_raw(opening)
            await caller.wait_closed(timeout=5)
        assert caller.closed_by_server, f"not refused: {opening!r:.40}"
        assert caller.close_code == 1002
    log = bots.standard.logs()
    assert "no callSid" in log and "not JSON" in log and "binary frame" in log

    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await caller.wait_for_bot_audio(timeout=10)


async def test_malformed_messages_mid_call_are_dropped_and_the_call_goes_on(bots, fakes):
    fakes.deepgram.transcripts.append(caller_line("order_number"))
    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await hear_greeting(caller)
        junk = [
            "not json at all",
            b"\x00\xff binary",
            '{"event": "media", "streamSid": "x", "media": {"payload": "%%%not-base64"}}',
            '{"event": "media", "media": {}}',
            '{"event": "surprise"}',
            '{"event": "mark", "mark": {"name": [1]}}',
            '{"event": "dtmf", "dtmf": null}',
            '{"event": "dtmf", "dtmf": "5"}',
            '{"event": "media", "media": {"payload": "'
            + base64.b64encode(b"x" * 800_000).decode()
            + '"}}',
        ]
        for message in junk:
            await caller.send_raw(message)
        spoken = await caller.say(AUDIO / "order_number.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        # The keypad still reaches the LLM after the malformed key presses.
        await caller.press("42#")
        await wait_until(
            lambda: any("Keypad: 42#" in user_text(r) for r in fakes.openai.requests),
            timeout_secs=10,
            what="the key presses at the LLM",
        )
        assert not caller.closed_by_server
    log = bots.standard.logs()
    call_lines = [line for line in log.splitlines() if caller.call_sid in line]
    assert any("Dropped a" in line for line in call_lines)
    assert "not json at all" not in log


async def test_logs_carry_the_call_sid_and_never_a_secret_or_a_whole_number(bots, fakes):
    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await caller.wait_for_bot_audio(timeout=10)
    await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:")
    log = bots.standard.logs()
    for secret in (
        AUTH_TOKEN,
        fakes.openai.api_key,
        fakes.deepgram.api_key,
        fakes.cartesia.api_key,
    ):
        assert secret not in log
    assert CALLER_NUMBER not in log and "+1415***0123" in log
    started = [line for line in log.splitlines() if "Call started" in line]
    assert started and all("] Call started" in line and "[CA" in line for line in started)
