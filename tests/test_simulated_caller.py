"""The simulated caller speaks Twilio's Media Streams protocol: checked against a bare server."""

import asyncio
import base64
import json
import re
import time
import wave

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit.caller_audio import AUDIO
from testkit.phone_audio import (
    MEDIA_FRAME_BYTES,
    MEDIA_FRAME_SECS,
    pcm16_bytes,
    pcm16_secs,
    pcm16_to_ulaw,
    read_wav_8k,
)
from testkit.simulated_caller import SimulatedCaller


class BotSide:
    """The bot's end of a Media Stream, reduced to recording what the caller sends."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[tuple[float, str]] = []
        self.websocket: ServerConnection | None = None
        self.connected = asyncio.Event()

    async def handler(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        self.connected.set()
        async for message in websocket:
            self.received.append((time.monotonic(), message))

    def events(self, event: str) -> list[tuple[float, dict]]:
        parsed = [(t, json.loads(m)) for t, m in self.received]
        return [(t, m) for t, m in parsed if m.get("event") == event]

    async def send(self, message: dict) -> None:
        await self.connected.wait()
        assert self.websocket is not None
        await self.websocket.send(json.dumps(message))

    async def send_audio(self, stream_sid: str, secs: float) -> None:
        """Bot speech as pipecat sends it: 20 ms media messages, as fast as it likes."""
        payload = base64.b64encode(pcm16_to_ulaw(b"\x10\x27" * MEDIA_FRAME_BYTES)).decode()
        for _ in range(round(secs / MEDIA_FRAME_SECS)):
            await self.send(
                {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
            )


@pytest.fixture
async def bot_side():
    bot = BotSide()
    async with serve(bot.handler, "127.0.0.1", 0) as server:
        bot.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        yield bot


async def test_caller_opens_the_stream_paces_media_presses_keys_and_hangs_up(bot_side):
    params = {"from_number": "+14155550123"}
    async with SimulatedCaller(bot_side.url, custom_parameters=params) as caller:
        await asyncio.sleep(1.0)
        await caller.press("42")
        await caller.hang_up()
        await asyncio.sleep(0.1)

    messages = [json.loads(m) for _, m in bot_side.received]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = messages[1]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert (
        re.fullmatch(r"MZ[0-9a-f]{32}", start["streamSid"])
        and start["streamSid"] == caller.stream_sid
    )
    assert re.fullmatch(r"CA[0-9a-f]{32}", start["start"]["callSid"])
    assert re.fullmatch(r"AC[0-9a-f]{32}", start["start"]["accountSid"])
    assert start["start"]["customParameters"] == params
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,  # Twilio's documented format, not this project's constant
        "channels": 1,
    }
    assert [int(m["sequenceNumber"]) for m in messages[1:]] == list(range(1, len(messages)))

    media = bot_side.events("media")
    in_first_second = [t for t, _ in media if t - media[0][0] < 1.0]
    assert 40 <= len(in_first_second) <= 60
    first = media[0][1]["media"]
    assert (first["track"], first["chunk"]) == ("inbound", "1")
    assert base64.b64decode(first["payload"]) == b"\xff" * MEDIA_FRAME_BYTES
    assert [m["media"]["chunk"] for _, m in media[:3]] == ["1", "2", "3"]

    dtmf = bot_side.events("dtmf")
    assert [m["dtmf"] for _, m in dtmf] == [
        {"track": "inbound_track", "digit": "4"},
        {"track": "inbound_track", "digit": "2"},
    ]
    assert dtmf[1][0] - dtmf[0][0] >= 0.09
    assert messages[-1]["event"] == "stop"
    assert messages[-1]["stop"] == {"accountSid": caller.account_sid, "callSid": caller.call_sid}
    assert not caller.closed_by_server


async def test_caller_says_a_wav_in_real_time(bot_side, tmp_path):
    wav_16k = tmp_path / "16k.wav"
    with wave.open(str(wav_16k), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(3200))
    speech = read_wav_8k(AUDIO / "agree.wav")
    async with SimulatedCaller(bot_side.url) as caller:
        with pytest.raises(ValueError, match="8000 Hz mono 16-bit"):
            await caller.say(wav_16k)
        spoken = await caller.say(AUDIO / "agree.wav")

    assert spoken.ended_at - spoken.started_at == pytest.approx(pcm16_secs(speech), abs=0.1)
    sent = b"".join(base64.b64decode(m["media"]["payload"]) for _, m in bot_side.events("media"))
    assert pcm16_to_ulaw(speech) in sent


async def test_caller_plays_bot_audio_out_and_echoes_marks_when_played(bot_side):
    async with SimulatedCaller(bot_side.url) as caller:
        await bot_side.send({"event": "connected"})  # not a message a server may send
        await bot_side.send_audio("MZ" + "0" * 32, 0.1)  # another stream's audio
        await bot_side.send_audio(caller.stream_sid, 0.5)
        await bot_side.send(
            {"event": "mark", "streamSid": caller.stream_sid, "mark": {"name": "hi"}}
        )
        arrived = await caller.wait_for_bot_audio(timeout=2)
        heard_until = await caller.wait_for_bot_silence(quiet_secs=0.2, timeout=3)

    ((echoed_at, echo),) = bot_side.events("mark")
    assert echo["mark"] == {"name": "hi"} and echo["streamSid"] == caller.stream_sid
    assert echoed_at - arrived == pytest.approx(0.5, abs=0.08)
    ((start, end),) = caller.bot_segments()
    assert (start, end) == (pytest.approx(arrived), pytest.approx(heard_until))
    assert end - start == pytest.approx(0.5, abs=0.01)
    assert len(caller.bot_audio_pcm()) == pcm16_bytes(0.5)
    assert caller.wrong_stream_sid_messages == 5
    assert [json.loads(m)["event"] for _, m in caller.unexpected] == ["connected"]


async def test_caller_counts_silent_media_as_a_gap_in_speech_only_segments(bot_side):
    quiet = base64.b64encode(pcm16_to_ulaw(bytes(2 * MEDIA_FRAME_BYTES))).decode()
    async with SimulatedCaller(bot_side.url) as caller:
        await bot_side.send_audio(caller.stream_sid, 0.3)
        for _ in range(10):  # 200 ms of silence, sent as media like a padding bot would
            await bot_side.send(
                {"event": "media", "streamSid": caller.stream_sid, "media": {"payload": quiet}}
            )
        await bot_side.send_audio(caller.stream_sid, 0.3)
        await caller.wait_for_bot_silence(quiet_secs=0.2, timeout=3)

    ((start, end),) = caller.bot_segments()
    assert end - start == pytest.approx(0.8, abs=0.01)
    first, second = caller.bot_segments(speech_only=True)
    assert second[0] - first[1] == pytest.approx(0.2, abs=0.01)


async def test_caller_clear_drops_unplayed_audio_and_releases_marks(bot_side, tmp_path):
    async with SimulatedCaller(bot_side.url) as caller:
        await bot_side.send_audio(caller.stream_sid, 1.0)
        await bot_side.send(
            {"event": "mark", "streamSid": caller.stream_sid, "mark": {"name": "m"}}
        )
        arrived = await caller.wait_for_bot_audio(timeout=2)
        await asyncio.sleep(0.2)
        await bot_side.send({"event": "clear", "streamSid": caller.stream_sid})
        await asyncio.sleep(0.1)
        caller.stereo_wav(tmp_path / "call.wav")
        await bot_side.websocket.close()
        await caller.wait_closed(timeout=2)

    (cleared_at,) = caller.clears
    ((echoed_at, _),) = bot_side.events("mark")
    assert 0 <= echoed_at - cleared_at < 0.05
    ((start, end),) = caller.bot_segments()
    assert (start, end) == (pytest.approx(arrived), pytest.approx(cleared_at))
    assert len(caller.bot_audio_pcm()) == pcm16_bytes(1.0)  # everything received, even if cut
    assert caller.closed_by_server and caller.close_code == 1000
    with wave.open(str(tmp_path / "call.wav"), "rb") as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, PHONE_SAMPLE_RATE)


async def test_caller_can_skip_the_handshake_and_send_raw_frames(bot_side):
    async with SimulatedCaller(bot_side.url, handshake=False) as caller:
        await caller.send_raw('{"event": "start"}')
        await caller.send_raw(b"\x00\x01")
        await asyncio.sleep(0.1)
    assert [m for _, m in bot_side.received[:2]] == ['{"event": "start"}', b"\x00\x01"]
    assert caller.start_sent_at is None
