"""The bot's Twilio serializer on its own: inbound messages in, pipeline frames out."""

import asyncio
import base64
import json
import re
import uuid
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from pipecat.evals.serializer import EvalConnectionFlags, eval_connect_message
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.twilio.stream import (
    EvalConnect,
    GuardedTwilioSerializer,
    StreamRejected,
    StreamStart,
    read_stream_start,
)
from testkit import media_stream
from testkit.media_stream import TEST_ACCOUNT_SID, new_sid
from testkit.phone_audio import pcm16_to_ulaw

STREAM_SID = "MZ" + "0" * 32


async def serializer(speech_hold: SpeechHold | None = None) -> GuardedTwilioSerializer:
    serializer = GuardedTwilioSerializer(
        STREAM_SID,
        speech_hold=speech_hold,
        params=GuardedTwilioSerializer.InputParams(auto_hang_up=False),
    )
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=PHONE_SAMPLE_RATE))
    return serializer


def media(pcm: bytes) -> str:
    payload = base64.b64encode(pcm16_to_ulaw(pcm)).decode()
    return json.dumps({"event": "media", "streamSid": STREAM_SID, "media": {"payload": payload}})


async def test_two_20_ms_messages_reach_the_pipeline_as_one_40_ms_frame_in_order():
    s = await serializer()
    # Distinct, mu-law-exact samples, so any reordering or loss would show.
    first, second = bytes(range(0, 256, 2)) * 2 + bytes(64), bytes(320)
    assert await s.deserialize(media(first)) is None
    frame = await s.deserialize(media(second))
    assert isinstance(frame, InputAudioRawFrame)
    assert (frame.sample_rate, frame.num_channels, len(frame.audio)) == (PHONE_SAMPLE_RATE, 1, 640)
    assert pcm16_to_ulaw(frame.audio) == pcm16_to_ulaw(first) + pcm16_to_ulaw(second)
    assert await s.deserialize(media(first)) is None  # the next pair starts afresh


async def test_a_key_press_is_not_held_back_by_half_a_frame_of_audio():
    s = await serializer()
    assert await s.deserialize(media(bytes(320))) is None
    dtmf = json.dumps({"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"digit": "5"}})
    frame = await s.deserialize(dtmf)
    assert isinstance(frame, InputDTMFFrame) and frame.button.value == "5"


async def test_malformed_messages_are_dropped_and_the_audio_goes_on():
    s = await serializer()
    bad = [
        b"\x00binary",
        "not json",
        "[1, 2]",
        json.dumps({"event": "media", "media": {}}),
        json.dumps({"event": "media", "media": {"payload": "%%% not base64"}}),
        "x" * 100_000,
    ]
    for message in bad:
        assert await s.deserialize(message) is None
    assert await s.deserialize(media(bytes(320))) is None
    assert isinstance(await s.deserialize(media(bytes(320))), InputAudioRawFrame)


def bot_audio() -> OutputAudioRawFrame:
    return OutputAudioRawFrame(audio=bytes(1280), sample_rate=PHONE_SAMPLE_RATE, num_channels=1)


async def test_held_bot_audio_waits_and_then_goes_on_unless_a_clear_came_meanwhile():
    hold = SpeechHold()
    s = await serializer(hold)
    hold.hold()
    waiting = asyncio.create_task(s.serialize(bot_audio()))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    hold.release()
    assert json.loads(await waiting)["event"] == "media"
    # Held across a barge-in's `clear`: stale, so dropped rather than played after it.
    hold.hold()
    waiting = asyncio.create_task(s.serialize(bot_audio()))
    await asyncio.sleep(0.05)
    assert json.loads(await s.serialize(InterruptionFrame()))["event"] == "clear"
    assert await waiting is None
    assert not hold.held
    assert json.loads(await s.serialize(bot_audio()))["event"] == "media"


async def test_a_hold_nobody_releases_ends_by_itself():
    hold = SpeechHold(max_secs=0.1)
    s = await serializer(hold)
    hold.hold()
    assert json.loads(await s.serialize(bot_audio()))["event"] == "media"
    assert not hold.held


class HandshakeSocket:
    """A socket that says ``connected`` and then ``start``, as Twilio does."""

    def __init__(self, start: dict) -> None:
        self._messages = [media_stream.connected(), start]

    async def receive(self) -> dict:
        return {"type": "websocket.receive", "text": json.dumps(self._messages.pop(0))}


def start_message(call_sid: str, stream_sid: str, account_sid: str | None) -> dict:
    return media_stream.start(
        sequence=1,
        stream_sid=stream_sid,
        account_sid=account_sid,
        call_sid=call_sid,
        custom_parameters={},
    )


async def read_start(call_sid: str, **options) -> StreamStart | str:
    """What the bot makes of a ``start`` naming ``call_sid``: the start, or why it refused."""
    start = start_message(call_sid, new_sid("MZ"), TEST_ACCOUNT_SID)
    try:
        return await read_stream_start(HandshakeSocket(start), **options)
    except StreamRejected as reason:
        return str(reason)


near_misses = st.sampled_from(
    ["CA" + "0" * 31, "CA" + "0" * 33, "CA" + "A" * 32, "ca" + "0" * 32, "MZ" + "0" * 32]
) | st.builds(
    lambda sid, junk, at: sid[:at] + junk + sid[at:],
    st.just(new_sid("CA")),
    st.text(min_size=1, max_size=20),
    st.integers(0, 34),
)


@settings(max_examples=100, deadline=None)
@given(call_sid=st.text(min_size=1) | near_misses)
def test_only_a_twilio_call_sid_is_accepted_and_a_refusal_never_repeats_it(call_sid):
    outcome = asyncio.run(read_start(call_sid, accept_local_test_ids=True))
    if re.fullmatch(r"CA[0-9a-f]{32}", call_sid):
        assert isinstance(outcome, StreamStart) and outcome.call_sid == call_sid
        return
    assert isinstance(outcome, str), f"accepted {call_sid!r}"
    assert "callSid" in outcome and "\n" not in outcome
    if len(call_sid) >= 8:
        assert call_sid not in outcome


async def test_a_local_test_clients_uuid_ids_are_accepted_only_when_asked_for():
    local = start_message(str(uuid.uuid4()), str(uuid.uuid4()), None)
    start = await read_stream_start(HandshakeSocket(local), accept_local_test_ids=True)
    assert start.local_test and start.account_sid is None
    try:
        await read_stream_start(HandshakeSocket(local))
    except StreamRejected as reason:
        assert "callSid is not a Twilio SID" in str(reason)
    else:
        raise AssertionError("uuid ids accepted outside the development runner")
    # Twilio's own ids are never a local test call.
    twilio = start_message(new_sid("CA"), new_sid("MZ"), TEST_ACCOUNT_SID)
    start = await read_stream_start(HandshakeSocket(twilio), accept_local_test_ids=True)
    assert not start.local_test


class ScriptedSocket:
    """A socket that says the given JSON texts, in order."""

    def __init__(self, *texts: str) -> None:
        self._texts = list(texts)

    async def receive(self) -> dict:
        return {"type": "websocket.receive", "text": self._texts.pop(0)}


async def test_pipecats_eval_harness_is_told_apart_only_by_its_first_message():
    harness = eval_connect_message(EvalConnectionFlags(skip_tts=True, capture_bot_audio=True))
    connect = await read_stream_start(ScriptedSocket(harness))
    assert isinstance(connect, EvalConnect)
    assert connect.flags == EvalConnectionFlags(skip_tts=True, capture_bot_audio=True)
    # After Twilio's `connected`, it is no Media Stream's message: refused as before.
    for texts, reason in [
        ((json.dumps(media_stream.connected()), harness), "got a message with no event"),
        ((harness.replace("true", '"loudly"', 1),), "'eval-connect' message with malformed flags"),
    ]:
        try:
            outcome = await read_stream_start(ScriptedSocket(*texts))
        except StreamRejected as refusal:
            outcome = str(refusal)
        assert outcome.endswith(reason), texts
