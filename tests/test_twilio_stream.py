"""The bot's Twilio serializer on its own: inbound messages in, pipeline frames out."""

import asyncio
import base64
import json
from types import SimpleNamespace

from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.twilio.stream import GuardedTwilioSerializer
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
