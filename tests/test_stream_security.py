"""Stream security: refused streams, malformed input that never takes a call down, clean logs."""

import asyncio
import base64
import contextlib
import json
import re
import uuid

from pipecat.evals.serializer import EvalConnectionFlags, eval_connect_message
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bot_runtime.twilio.call_control import CONFIRM_TIMEOUT_SECS
from testkit.bot_server import BotServer
from testkit.caller_audio import AUDIO, caller_line
from testkit.media_stream import TEST_ACCOUNT_SID, new_sid
from testkit.scenario import (
    AUTH_TOKEN,
    CALLER_NUMBER,
    INBOUND,
    STREAM_SECRET,
    hear_greeting,
    rest_requests_for,
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

    # The secret vouches for a stream even when Twilio does not know its call: the
    # softphone's call to a deployed agent is one.
    parameters = {**INBOUND, "stream_secret": STREAM_SECRET}
    call_sid = new_sid("CA")
    fakes.twilio.forget_call(call_sid)
    async with SimulatedCaller(
        bots.secured.url, custom_parameters=parameters, call_sid=call_sid
    ) as caller:
        await caller.wait_for_bot_audio(timeout=10)
    await bots.secured.wait_for_log(f"[{call_sid}] A test call, since it carried the stream secret")
    assert STREAM_SECRET not in bots.secured.logs()
    assert "STREAM_SECRET is not set" not in bots.secured.logs()
    assert all(STREAM_SECRET not in str(r["messages"]) for r in fakes.openai.requests)


async def test_forged_call_sids_are_refused_with_no_service_connection_rest_request_or_log(
    bots, fakes
):
    before, rest_before = fakes.connections(), len(fakes.twilio.requests)
    forged = [
        "CA12345",
        "CA" + "0" * 32 + "f" * 64_000,  # oversized
        "CA" + "1" * 32 + "\n2026-12-06 12:00:00 | INFO | FORGED: refund approved",
        "CA0/../../IncomingPhoneNumbers/PN" + "0" * 32,  # yarl would walk the REST path
        "CA" + "ABCDEF0123456789" * 2,  # upper case: not how Twilio writes SIDs
        str(uuid.uuid4()),  # the dev runner's local test ids come in pairs, never alone
    ]
    for call_sid in forged:
        async with SimulatedCaller(
            bots.standard.url, custom_parameters=INBOUND, call_sid=call_sid
        ) as caller:
            await caller.wait_closed(timeout=5)
        assert caller.closed_by_server and caller.close_code == 1002, call_sid[:40]
    assert fakes.connections() == before
    # Whatever other calls still ask Twilio is about a well-formed call SID.
    call_path = re.compile(r"/2010-04-01/Accounts/AC\w+/Calls/CA[0-9a-f]{32}(\.json|/.*)")
    assert all(call_path.fullmatch(r.path) for r in fakes.twilio.requests[rest_before:])
    log = bots.standard.logs()
    assert "FORGED" not in log and "IncomingPhoneNumbers" not in log and "f" * 100 not in log
    refusals = [line for line in log.splitlines() if "callSid is not a Twilio SID" in line]
    assert len(refusals) >= len(forged) and all("[" not in line for line in refusals)


def twilio_signature(bot: BotServer) -> str:
    """The X-Twilio-Signature Twilio would send dialling ``bot``'s stream URL."""
    return RequestValidator(AUTH_TOKEN).compute_signature(f"wss://127.0.0.1:{bot.port}/ws", {})


async def test_a_call_twilio_does_not_know_ends_at_once_with_no_llm_request(bots, fakes):
    fakes.deepgram.transcripts.append(caller_line("saturday"))
    llm_before = len(fakes.openai.requests)
    call_sid = new_sid("CA")
    fakes.twilio.forget_call(call_sid)  # Twilio answers 404: made up, or another account's
    # Late enough that the caller's first turn ends before the answer, and must wait for it.
    fakes.twilio.answer_slowly_about(call_sid, CONFIRM_TIMEOUT_SECS - 0.5)
    # Through a tunnel, signed: a replayed upgrade, or a stream from anyone on Pipecat Cloud.
    through_tunnel = {"X-Twilio-Signature": twilio_signature(bots.standard), "X-Forwarded-For": "1"}
    async with SimulatedCaller(
        bots.standard.url, custom_parameters=INBOUND, call_sid=call_sid, headers=through_tunnel
    ) as caller:
        # The caller speaks at once, before Twilio has answered: no word reaches the LLM.
        with contextlib.suppress(ConnectionError):  # The call may end before it is all said.
            await caller.say(AUDIO / "saturday.wav")
        await caller.wait_closed(timeout=CONFIRM_TIMEOUT_SECS + 2)
    assert caller.closed_by_server
    line = await bots.standard.wait_for_log(f"[{call_sid}] Ending call: not a live call")
    assert "Twilio does not know this call" in line
    await asyncio.sleep(0.5)
    assert len(fakes.openai.requests) == llm_before
    # Only the fetch: no hang-up, recording or redirect of a call Twilio does not know.
    assert [r.method for r in rest_requests_for(fakes, call_sid, with_fetch=True)] == ["GET"]

    # The same from this machine is an operator's test client (scripts/call.py, the softphone).
    call_sid = new_sid("CA")
    fakes.twilio.forget_call(call_sid)
    async with SimulatedCaller(
        bots.standard.url, custom_parameters=INBOUND, call_sid=call_sid
    ) as caller:
        await caller.wait_for_bot_audio(timeout=10)
        assert not caller.closed_by_server
    await bots.standard.wait_for_log(f"[{call_sid}] A test call, since it came from this machine")
    assert [r.method for r in rest_requests_for(fakes, call_sid, with_fetch=True)] == ["GET"]


async def test_a_local_test_clients_uuid_ids_are_served_with_no_rest_request(bots, fakes):
    """pipecat-examples' local Twilio client (uuid4 ids, no accountSid) under the dev runner."""
    call_sid, stream_sid = str(uuid.uuid4()), str(uuid.uuid4())
    async with SimulatedCaller(
        bots.standard.url, call_sid=call_sid, stream_sid=stream_sid, account_sid=None
    ) as caller:
        await caller.wait_for_bot_audio(timeout=10)
    await bots.standard.wait_for_log(f"[{call_sid}] Call summary:")
    assert not rest_requests_for(fakes, call_sid, with_fetch=True)
    call_lines = [line for line in bots.standard.logs().splitlines() if call_sid in line]
    assert not [line for line in call_lines if "WARNING" in line], call_lines


async def test_an_upgrade_from_outside_must_carry_twilios_signature(bots, fakes):
    """The development runner's /ws, self-hosted behind a tunnel: the bot sees the upgrade."""
    before = fakes.connections()
    signed = twilio_signature(bots.standard)
    refused = [
        ({"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, "does not match"),
        # Signed for this URL, but the tunnel says Twilio dialled another host.
        ({"X-Twilio-Signature": signed, "X-Forwarded-Host": "elsewhere.example"}, "not match"),
        ({"X-Forwarded-For": "203.0.113.9"}, "no X-Twilio-Signature on a stream from outside"),
    ]
    for headers, reason in refused:
        count = bots.standard.logs().count(reason)
        async with SimulatedCaller(bots.standard.url, headers=headers, handshake=False) as caller:
            await caller.wait_closed(timeout=5)
        assert caller.close_code == 1008, headers
        await wait_until(
            lambda: bots.standard.logs().count(reason) > count,  # noqa: B023 (awaited here)
            timeout_secs=5,
            what=f"the refusal: {reason}",
        )
    assert fakes.connections() == before
    through_tunnel = {"X-Twilio-Signature": signed, "X-Forwarded-For": "54.172.60.1"}
    async with SimulatedCaller(
        bots.standard.url, custom_parameters=INBOUND, headers=through_tunnel
    ) as caller:
        await caller.wait_for_bot_audio(timeout=10)


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
    # Credentials but no stream secret: the operator is told what that allows, and the fix.
    (unsecured,) = [line for line in log.splitlines() if "STREAM_SECRET is not set" in line]
    assert "render_twiml.py --new-secret" in unsecured
    started = [line for line in log.splitlines() if "Call started" in line]
    # Twilio's call SID, or (the development runner's local test calls) a uuid.
    prefix = re.compile(r"\[(CA[0-9a-f]{32}|[0-9a-f-]{36})\] Call started")
    assert started and all(prefix.search(line) for line in started)


async def harness_handshake(url: str, *, headers: dict[str, str] | None = None) -> str:
    """Open the bot's socket as pipecat's eval harness does: "bot-ready", or how it was closed."""
    client_ready = {
        "label": "rtvi-ai",
        "type": "client-ready",
        "id": "1",
        "data": {"version": "1.0.0"},
    }
    async with connect(url, additional_headers=headers or {}, close_timeout=2) as ws:
        await ws.send(eval_connect_message(EvalConnectionFlags(skip_tts=True)))
        await ws.send(json.dumps(client_ready))
        try:
            async with asyncio.timeout(10):
                async for message in ws:
                    if json.loads(message).get("type") == "bot-ready":
                        return "bot-ready"
        except ConnectionClosed:
            pass
    return f"{ws.close_code} {ws.close_reason}"


async def test_an_eval_must_prove_itself_as_a_test_call_before_any_service_connects(bots, fakes):
    """pipecat's eval harness: with STREAM_SECRET the eval carries it (in the URL's query under
    the development runner); without, only an eval from this machine runs."""
    before = fakes.connections()
    refused = [
        (bots.secured, "", None, "it carried no stream_secret"),
        (
            bots.secured,
            "?stream_secret=guessed-wrong",
            None,
            "the stream_secret it carried is wrong",
        ),
        (bots.bare, "", {"X-Forwarded-For": "203.0.113.9"}, "no STREAM_SECRET on this bot"),
    ]
    for bot, query, headers, reason in refused:
        outcome = await harness_handshake(bot.url + query, headers=headers)
        assert outcome.startswith(f"1008 eval refused: {reason}"), outcome
        line = await bot.wait_for_log(f"Refused an eval: {reason}")
        assert re.search(r"\[eval-[0-9a-f]{12}\] Refused an eval", line)
    assert fakes.connections() == before
    # The runner's own line for each socket shows its URL: the secret in it is redacted.
    assert "guessed-wrong" not in bots.secured.logs()

    with_secret = f"{bots.secured.url}?stream_secret={STREAM_SECRET}"
    assert await harness_handshake(with_secret) == "bot-ready"
    await bots.secured.wait_for_log("Eval started by pipecat's harness")
    assert STREAM_SECRET not in bots.secured.logs()
