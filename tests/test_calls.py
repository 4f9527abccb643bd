"""Whole calls through the real bot: a simulated Twilio caller, loopback services, real time."""

import asyncio
import os
import sys
import time
import uuid
import wave

import aiohttp

from bot_runtime.config.settings import DEFAULT_GOODBYE, DEFAULT_GREETING, DEFAULT_SILENCE_PROMPT
from bot_runtime.phone_line import PHONE_SAMPLE_RATE, SILENCE_PROMPT_MARK
from bot_runtime.twilio.stream import HANG_UP_TIMEOUT_SECS
from testkit.bot_server import REPO, start_bot_server
from testkit.caller_audio import AUDIO, caller_line
from testkit.fakes import Reply
from testkit.fakes.business_server import Answer
from testkit.media_stream import TEST_ACCOUNT_SID
from testkit.phone_audio import pcm16_bytes
from testkit.scenario import (
    AGENT_NUMBER,
    CALLER_NUMBER,
    INBOUND,
    REPLY,
    STREAM_SECRET,
    TWILIO_CREDENTIALS,
    answered_call,
    bot_env,
    call_record,
    hear_greeting,
    records_env,
    rest_requests_for,
    user_text,
    wait_for_hang_up,
    wait_until,
)
from testkit.simulated_caller import SimulatedCaller


async def test_greeting_arrives_as_media_with_the_stream_sid(bots, fakes):
    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await hear_greeting(caller)
        assert caller.media, "no media received"
        assert caller.wrong_stream_sid_messages == 0
        assert all(m.stream_sid == caller.stream_sid for m in caller.media)
        assert not caller.unexpected, f"non-Twilio messages sent: {caller.unexpected[:2]}"
    assert DEFAULT_GREETING in fakes.cartesia.said


async def test_caller_utterance_reaches_the_llm_with_transcript_and_call_facts(bots, fakes):
    fakes.deepgram.transcripts.append(caller_line("order_status"))
    requests_before = len(fakes.openai.requests)
    parameters = {**INBOUND, "campaign_id": "spring-sale", "customer_id": "cust-42"}
    async with SimulatedCaller(bots.standard.url, custom_parameters=parameters) as caller:
        await hear_greeting(caller)
        spoken = await caller.say(AUDIO / "order_status.wav")
        reply_at = await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await caller.wait_for_bot_silence(timeout=10)

    requests = fakes.openai.requests[requests_before:]
    assert requests, "the caller's words never reached the LLM"
    last = requests[-1]
    assert "status of my order" in user_text(last)
    system = " ".join(m["content"] for m in last["messages"] if m["role"] == "system")
    assert CALLER_NUMBER in system and AGENT_NUMBER in system
    assert "spring-sale" in system and "cust-42" in system
    assert "inbound" in system
    assert any(t["function"]["name"] == "end_call" for t in last["tools"])
    assert reply_at > spoken.started_at
    # The reply's first phrase went to the voice on its own, ahead of the rest of its
    # sentence, and Cartesia, joining a context's pieces verbatim, reads the reply whole.
    reply = [c for c in fakes.cartesia.contexts.values() if c.spoken.strip() == REPLY][-1]
    assert reply.transcripts[0].strip() == REPLY.split(",")[0] + ","


async def test_barge_in_sends_clear_and_the_record_keeps_only_what_was_heard(bots, fakes, records):
    long_reply = " ".join(["This is a long answer that keeps going."] * 12)
    fakes.openai.responder = lambda request: Reply(long_reply)
    fakes.deepgram.transcripts += [caller_line("order_status"), caller_line("long")]
    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await hear_greeting(caller)
        spoken = await caller.say(AUDIO / "order_status.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await asyncio.sleep(1.0)  # The long answer is playing now.
        barge_in = asyncio.create_task(caller.say(AUDIO / "long.wav"))
        interrupted_at = time.monotonic()
        await wait_until(
            lambda: any(t > interrupted_at for t in caller.clears), timeout_secs=5, what="clear"
        )
        barge_in.cancel()
    clear_latency = min(t for t in caller.clears if t > interrupted_at) - interrupted_at
    assert clear_latency < 3.0
    record = await call_record(records, caller.call_sid)
    *_, cut = [t for t in record["transcript"] if t["role"] == "agent" and t["interrupted"]]
    # The caller heard a second or two of the long answer: that much, and no more, is kept.
    assert long_reply.startswith(cut["text"]) and 0 < len(cut["text"]) < len(long_reply) / 2


async def test_end_call_plays_the_goodbye_then_hangs_up_once(bots, fakes, records):
    fakes.deepgram.transcripts.append(caller_line("goodbye"))
    async with answered_call(bots.standard, fakes) as caller:
        await hear_greeting(caller)
        spoken = await caller.say(AUDIO / "goodbye.wav")
        await caller.wait_closed(timeout=20)
        goodbye_heard_until = caller.bot_segments()[-1][1]

    assert DEFAULT_GOODBYE in fakes.cartesia.said
    requests = rest_requests_for(fakes, caller.call_sid)
    assert [(r.method, r.form) for r in requests] == [("POST", {"Status": "completed"})]
    (hangup,) = requests
    # The fake accepts only the right account SID and token; the hang-up is recorded only then.
    assert hangup.username == TEST_ACCOUNT_SID
    assert fakes.twilio.hangups.count(caller.call_sid) == 1
    assert hangup.time >= goodbye_heard_until - 0.05, "hung up before the goodbye was heard"
    assert goodbye_heard_until > spoken.ended_at
    summary = await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "ended by end_call tool" in summary
    record = await call_record(records, caller.call_sid)
    assert (record["ended_reason"], record["from"], record["to"]) == (
        "end_call",
        CALLER_NUMBER,
        AGENT_NUMBER,
    )
    turns = record["transcript"]
    assert (turns[0]["role"], turns[0]["text"]) == ("agent", DEFAULT_GREETING)
    assert (turns[-1]["role"], turns[-1]["text"]) == ("agent", DEFAULT_GOODBYE)
    # The line may reach the LLM in more than one turn (at its commas), in order.
    said = " ".join(t["text"] for t in turns if t["role"] == "caller")
    assert said == caller_line("goodbye")
    assert [t["at_secs"] for t in turns] == sorted(t["at_secs"] for t in turns)


async def test_a_hang_up_twilio_never_answers_still_ends_the_call_and_sends_its_record(
    bots, fakes, records
):
    fakes.deepgram.transcripts.append(caller_line("goodbye"))
    async with answered_call(bots.standard, fakes) as caller:
        fakes.twilio.leave_hang_ups_unanswered(caller.call_sid)
        await hear_greeting(caller)
        await caller.say(AUDIO / "goodbye.wav")
        await wait_until(
            lambda: (caller.call_sid, {"Status": "completed"}) in fakes.twilio.updates,
            timeout_secs=20,
            what="the hang-up request",
        )
        # pipecat's own request would wait 300 s (aiohttp's default) before the stream closed.
        await caller.wait_closed(timeout=HANG_UP_TIMEOUT_SECS + 3)
    line = await bots.standard.wait_for_log(f"[{caller.call_sid}] Twilio did not answer")
    assert f"within {HANG_UP_TIMEOUT_SECS:g} s" in line
    record = await call_record(records, caller.call_sid)
    assert record["ended_reason"] == "end_call"


async def test_caller_hang_up_stops_the_call_without_a_rest_request(bots, fakes, records):
    async with SimulatedCaller(bots.standard.url, custom_parameters=INBOUND) as caller:
        await caller.wait_for_bot_audio(timeout=10)
        await caller.hang_up()
    summary = await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:", timeout_secs=5)
    assert "ended by caller hung up" in summary
    await asyncio.sleep(1.0)  # A hang-up request, if any, would have been sent by now.
    assert not rest_requests_for(fakes, caller.call_sid)
    log = bots.standard.logs()
    call_lines = [line for line in log.splitlines() if caller.call_sid in line]
    assert not [line for line in call_lines if "ERROR" in line], call_lines
    assert (await call_record(records, caller.call_sid))["ended_reason"] == "caller_hung_up"


async def test_caller_is_looked_up_and_a_normal_call_logs_no_warning(bots, fakes):
    fakes.deepgram.transcripts.append(caller_line("saturday"))
    requests_before = len(fakes.openai.requests)
    async with SimulatedCaller(bots.standard.url) as caller:
        fakes.twilio.register_call(sid=caller.call_sid, from_="+14155550177", to=AGENT_NUMBER)
        await hear_greeting(caller)
        spoken = await caller.say(AUDIO / "saturday.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await caller.wait_for_bot_silence(timeout=10)
    lookups = rest_requests_for(fakes, caller.call_sid, with_fetch=True)
    assert [r.method for r in lookups] == ["GET"]
    context = str(fakes.openai.requests[-1]["messages"])
    assert len(fakes.openai.requests) > requests_before
    assert "+14155550177" in context
    # An operator can trust the log: a warning means something, and it says where calls go.
    summary = await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "loop lag max" in summary
    log = bots.standard.logs()
    call_lines = [line for line in log.splitlines() if caller.call_sid in line]
    assert not [line for line in call_lines if "WARNING" in line or "ERROR" in line], call_lines
    ready = f"Ready for calls: Twilio Media Streams on ws://127.0.0.1:{bots.standard.port}/ws"
    assert ready in log and "Setting VAD params" not in log


async def test_a_busy_port_is_one_line_and_the_runners_root_says_where_calls_go(bots):
    second = await asyncio.create_subprocess_exec(
        *(sys.executable, "bot.py", "-t", "twilio", "--host", "127.0.0.1"),
        *("--port", str(bots.bare.port)),
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHON_DOTENV_DISABLED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode != 0
    errors = [line for line in err.decode().splitlines() if line.startswith("bot.py:")]
    assert len(errors) == 1 and "--port" in errors[0], err.decode()
    assert "Ready for calls" not in out.decode() + err.decode()
    assert "Loaded" not in err.decode()  # Said before any model loads.
    # The runner's banner says "Open: http://HOST:PORT": that page says where calls go, and
    # TwiML without a tunnel host (wss://None/ws) is refused, naming the option to set.
    base = f"http://127.0.0.1:{bots.bare.port}/"
    async with aiohttp.ClientSession() as session:
        async with session.get(base) as page:
            assert f"calls go to ws://127.0.0.1:{bots.bare.port}/ws" in await page.text()
        async with session.post(base) as twiml:
            text = await twiml.text()
            assert twiml.status == 400 and "wss://None" not in text and " -x " in text, text
    assert "Refused a TwiML request" in await bots.bare.wait_for_log("-x YOUR_TUNNEL_HOST")


async def test_missing_twilio_credentials_warn_and_the_call_still_runs(bots, fakes):
    async with SimulatedCaller(bots.bare.url, custom_parameters=INBOUND) as caller:
        await caller.wait_for_bot_audio(timeout=10)
    line = await bots.bare.wait_for_log(f"[{caller.call_sid}] No auto hang-up on this call")
    assert "TWILIO_ACCOUNT_SID" in line and "TWILIO_AUTH_TOKEN" in line


async def test_maximum_call_duration_says_goodbye_and_ends_the_stream(bots, fakes, records):
    async with SimulatedCaller(bots.bare.url, custom_parameters=INBOUND) as caller:
        await caller.wait_for_bot_audio(timeout=10)
        await caller.wait_closed(timeout=20)
    assert caller.closed_by_server
    assert caller.start_sent_at is not None
    summary = await bots.bare.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "ended by maximum duration 10 s" in summary
    assert DEFAULT_GOODBYE in fakes.cartesia.said
    assert not rest_requests_for(fakes, caller.call_sid)
    record = await call_record(records, caller.call_sid)
    assert (record["ended_reason"], record["ended_detail"]) == ("max_duration", "10 s")


async def test_outbound_call_lets_the_callee_speak_first(bots, fakes):
    parameters = {"call_type": "outbound", "from_number": AGENT_NUMBER, "to_number": CALLER_NUMBER}
    async with SimulatedCaller(bots.standard.url, custom_parameters=parameters) as caller:
        assert caller.start_sent_at is not None
        first = await caller.wait_for_bot_audio(timeout=10)
    # The callee said nothing: the bot greets after about two seconds, not at once.
    assert first - caller.start_sent_at >= 1.8
    summary = await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "answered by person" in summary


async def test_silent_caller_is_prompted_once_then_the_call_ends(bots, fakes, records):
    transcripts_before = len(fakes.cartesia.said)
    parameters = {**INBOUND, "stream_secret": STREAM_SECRET}
    async with SimulatedCaller(bots.secured.url, custom_parameters=parameters) as caller:
        fakes.twilio.register_call(sid=caller.call_sid, from_=CALLER_NUMBER, to=AGENT_NUMBER)
        await caller.wait_for_bot_audio(timeout=10)
        await wait_for_hang_up(fakes, caller.call_sid, timeout_secs=20)
    spoken = fakes.cartesia.said[transcripts_before:]
    assert spoken.count(DEFAULT_SILENCE_PROMPT) == 1
    assert spoken[-1] == DEFAULT_GOODBYE
    # A mark before the prompt tells the caller's side it is a prompt (call.py says so).
    assert [name for _, name in caller.marks_echoed if name.startswith(SILENCE_PROMPT_MARK)]
    summary = await bots.secured.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "ended by caller silent" in summary
    assert (await call_record(records, caller.call_sid))["ended_reason"] == "silence"


async def test_call_script_reports_the_silence_prompt_as_a_prompt_not_a_reply(bots, tmp_path):
    # A line of silence is no turn: the bot's next words are its silence prompt.
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(PHONE_SAMPLE_RATE)
        wav.writeframes(bytes(pcm16_bytes(0.5)))
    call = await asyncio.create_subprocess_exec(
        *(sys.executable, "scripts/call.py", "--url", bots.standard.url, "--wav", str(silence)),
        *("--language", "fr"),
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHON_DOTENV_DISABLED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(call.communicate(), 90)
    assert call.returncode == 0, err.decode()[-2000:]
    assert "bot (silence prompt, " in out.decode(), out.decode()
    assert "turns: 1 (bot replies heard: 0, silence prompts: 1)" in out.decode()
    assert "reply latency" not in out.decode()  # The prompt is no reply to time.
    # --language is the stream's language parameter; this bot declares none and says so.
    assert "The language parameter 'fr' is not a language the agent file declares" in (
        bots.standard.logs()
    )


async def test_outbound_callee_who_speaks_first_gets_an_answer_not_the_greeting(bots, fakes):
    fakes.deepgram.transcripts.append(caller_line("agree"))
    parameters = {"call_type": "outbound", "from_number": AGENT_NUMBER, "to_number": CALLER_NUMBER}
    transcripts_before = len(fakes.cartesia.said)
    async with SimulatedCaller(bots.standard.url, custom_parameters=parameters) as caller:
        spoken = await caller.say(AUDIO / "agree.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await caller.wait_for_bot_silence(timeout=10)
        await asyncio.sleep(2.5)  # Past the outbound greeting delay.
    spoken_by_bot = fakes.cartesia.said[transcripts_before:]
    assert REPLY in spoken_by_bot
    assert DEFAULT_GREETING not in spoken_by_bot


async def test_outbound_call_to_voicemail_leaves_the_message_and_hangs_up(bots, fakes, records):
    fakes.deepgram.transcripts.append(
        "Hi, you have reached Sam, please leave a message after the tone."
    )
    parameters = {
        "call_type": "outbound",
        "from_number": AGENT_NUMBER,
        "to_number": CALLER_NUMBER,
        "voicemail_message": "Hi Sam, your order is ready for pickup. Goodbye.",
    }
    transcripts_before = len(fakes.cartesia.said)
    async with SimulatedCaller(bots.standard.url, custom_parameters=parameters) as caller:
        fakes.twilio.register_call(sid=caller.call_sid, from_=AGENT_NUMBER, to=CALLER_NUMBER)
        spoken = await caller.say(AUDIO / "order_status.wav")  # The machine's greeting.
        await wait_for_hang_up(fakes, caller.call_sid, timeout_secs=20)
        message_end = caller.bot_segments()[-1][1]
    spoken_by_bot = fakes.cartesia.said[transcripts_before:]
    assert "Hi Sam, your order is ready for pickup. Goodbye." in spoken_by_bot
    assert DEFAULT_GREETING not in spoken_by_bot
    # The message starts after the greeting ended, and was heard before the hang-up.
    assert caller.first_media_after(spoken.ended_at) is not None
    (hangup,) = [r for r in rest_requests_for(fakes, caller.call_sid) if r.form]
    assert hangup.time >= message_end - 0.05
    summary = await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "answered by machine" in summary and "ended by left a voicemail" in summary
    record = await call_record(records, caller.call_sid)
    assert (record["ended_reason"], record["answered_by"], record["direction"]) == (
        "voicemail",
        "machine",
        "outbound",
    )
    assert record["parameters"]["voicemail_message"].startswith("Hi Sam")


async def test_bot_runs_with_the_arguments_pipecat_cloud_passes(fakes, records, tmp_path):
    records.script("/calls/cloud", Answer(body={"received": True}))
    env = bot_env(fakes) | TWILIO_CREDENTIALS | records_env(records, "cloud")
    server = await start_bot_server(
        env, log_path=tmp_path / "cloud.log", script=REPO / "testkit" / "cloud_host.py"
    )
    try:
        # A local test client's uuid ids are served under the development runner only.
        local_ids = {"call_sid": str(uuid.uuid4()), "stream_sid": str(uuid.uuid4())}
        async with SimulatedCaller(server.url, account_sid=None, **local_ids) as local:
            await local.wait_closed(timeout=5)
        assert local.closed_by_server and local.close_code == 1002
        # On Pipecat Cloud every call is the first of its process. Without from_number the
        # bot looks the caller up beside the greeting; nothing of it may hold the event loop.
        async with SimulatedCaller(server.url) as caller:
            fakes.twilio.register_call(sid=caller.call_sid, from_=CALLER_NUMBER, to=AGENT_NUMBER)
            await caller.wait_for_bot_audio(timeout=15)
            assert caller.wrong_stream_sid_messages == 0
        summary = await server.wait_for_log(f"[{caller.call_sid}] Call summary:")
        # No lifespan hook there: the record still goes, from the call's own bot().
        await call_record(records, caller.call_sid)
    finally:
        await server.stop()
    call_lines = [line for line in server.logs().splitlines() if caller.call_sid in line]
    assert any("Call confirmed with Twilio: from" in line for line in call_lines), call_lines
    assert not [line for line in call_lines if "WARNING" in line], call_lines
    assert "loop lag max" in summary
