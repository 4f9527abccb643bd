"""The service fakes speak the real protocols: checked with the real clients (or their messages)."""

import asyncio
import base64
import json
import math
import time
from array import array

import openai
import pytest
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core import ApiError
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results, ListenV1UtteranceEnd
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit.caller_audio import AUDIO
from testkit.fakes import CartesiaTiming, FakeCartesia, FakeDeepgram, FakeOpenAI, Reply, ToolCall
from testkit.phone_audio import pcm16_bytes, read_wav_8k

RATE = str(PHONE_SAMPLE_RATE)  # as pipecat passes it to Deepgram
ORDER_STATUS = "Hi, I'm calling to check on the status of my order."
LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {"order_number": {"type": "string"}},
            "required": ["order_number"],
        },
    },
}


# --- FakeOpenAI, through the openai SDK ------------------------------------------------


def openai_client(fake: FakeOpenAI, api_key: str = "sk-test-key") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=api_key, max_retries=0)


async def test_openai_streams_a_reply_in_token_chunks_with_usage():
    async with FakeOpenAI(replies=[Reply("Your order ships tomorrow.")]) as fake:
        stream = await openai_client(fake).chat.completions.create(
            model="gpt-4.1-mini",
            messages=[{"role": "user", "content": "Where is my order?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta]
    assert "".join(filter(None, contents)) == "Your order ships tomorrow."
    assert sum(1 for text in contents if text) >= 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert fake.requests[0]["messages"][0]["content"] == "Where is my order?"
    assert fake.connections == 1


async def test_openai_streams_a_tool_call_in_fragments():
    call = ToolCall("lookup_order", {"order_number": "4567"})
    async with FakeOpenAI(replies=[call]) as fake:
        stream = await openai_client(fake).chat.completions.create(
            model="gpt-4.1-mini",
            messages=[{"role": "user", "content": "Order four five six seven."}],
            tools=[LOOKUP_TOOL],
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
        default = await openai_client(fake).chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "Thanks."}]
        )

    fragments = [t for c in chunks for t in (c.choices[0].delta.tool_calls or [])]
    assert fragments[0].id.startswith("call_") and fragments[0].type == "function"
    assert fragments[0].function.name == "lookup_order"
    assert len(fragments) > 2
    arguments = "".join(f.function.arguments or "" for f in fragments)
    assert json.loads(arguments) == {"order_number": "4567"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert fake.requests[0]["tools"][0]["function"]["name"] == "lookup_order"
    assert default.choices[0].message.content == fake.default_reply


async def test_openai_rejects_a_wrong_key_like_openai():
    async with FakeOpenAI() as fake:
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
            await openai_client(fake, api_key="sk-wrong").chat.completions.create(
                model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
    assert (fake.connections, fake.rejected) == (0, 1)


# --- FakeDeepgram, through the deepgram SDK as pipecat builds it ------------------------


def deepgram_client(fake: FakeDeepgram, api_key: str = "dg-test-key") -> AsyncDeepgramClient:
    http_url = fake.base_url.replace("ws://", "http://")
    environment = DeepgramClientEnvironment(
        base=http_url, production=fake.base_url, agent=fake.base_url, agent_rest=http_url
    )
    return AsyncDeepgramClient(api_key=api_key, environment=environment)


async def send_audio(connection, pcm: bytes) -> None:
    for i in range(0, len(pcm), 320):
        await connection.send_media(pcm[i : i + 320])


async def next_result(connection) -> ListenV1Results:
    while not isinstance(message := await asyncio.wait_for(connection.recv(), 5), ListenV1Results):
        pass
    return message


async def test_deepgram_transcribes_speech_on_finalize_and_at_the_line_end():
    speech = read_wav_8k(AUDIO / "order_status.wav")
    async with FakeDeepgram(transcripts=[ORDER_STATUS, "Thanks."]) as fake:
        params = {
            "model": "nova-3-general",
            "encoding": "linear16",
            "sample_rate": RATE,
            "interim_results": "true",
            "endpointing": "false",
        }
        async with deepgram_client(fake).listen.v1.connect(**params) as connection:
            await send_audio(connection, silence(0.5) + speech + silence(0.25))
            interim = await next_result(connection)
            await connection.send_finalize()
            while not (final := await next_result(connection)).is_final:
                pass  # More interims while the caller spoke: no final without endpointing.
            # No Finalize this time: the fake ends the line after a second of silence.
            await send_audio(connection, speech + silence(1.5))
            while not (endpointed := await next_result(connection)).is_final:
                pass
            await connection.send_close_stream()
            metadata = await asyncio.wait_for(connection.recv(), 5)

    assert not interim.is_final and ORDER_STATUS.startswith(
        interim.channel.alternatives[0].transcript
    )
    assert final.is_final and final.from_finalize
    assert final.channel.alternatives[0].transcript == ORDER_STATUS
    assert endpointed.is_final and endpointed.speech_final and not endpointed.from_finalize
    assert endpointed.channel.alternatives[0].transcript == "Thanks."
    assert isinstance(metadata, ListenV1Metadata)
    assert fake.transcripts_sent == [ORDER_STATUS, "Thanks."]
    for message in fake.results:
        ListenV1Results.model_validate(message)
    session = fake.sessions[0]
    assert session.params["sample_rate"] == RATE
    assert session.control == ["Finalize", "CloseStream"]


def tone(secs: float) -> bytes:
    """Speech-loud PCM16 at 8 kHz: a 200 Hz sine."""
    rate = PHONE_SAMPLE_RATE
    samples = [
        round(3000 * math.sin(2 * math.pi * 200 * n / rate)) for n in range(round(secs * rate))
    ]
    return array("h", samples).tobytes()


def silence(secs: float) -> bytes:
    return bytes(pcm16_bytes(secs))


async def next_final(connection) -> str:
    while not (result := await next_result(connection)).is_final:
        pass
    return result.channel.alternatives[0].transcript


async def test_deepgram_gives_a_line_out_phrase_by_phrase_at_mid_line_finalizes():
    lines = ["Hi, I'm calling about my order.", "Yes.", "One, two, three."]
    async with FakeDeepgram(transcripts=lines) as fake:
        params = {
            "model": "nova-3-general",
            "encoding": "linear16",
            "sample_rate": RATE,
            "endpointing": "false",
        }
        async with deepgram_client(fake).listen.v1.connect(**params) as connection:
            heard = []
            for audio in (tone(0.4), tone(1.2), tone(0.3), tone(0.5)):
                await send_audio(connection, audio + silence(0.2))
                await connection.send_finalize()
                heard.append(await next_final(connection))
            # The caller paused less often than the line has phrases: the endpoint sends the rest.
            await send_audio(connection, silence(1.0))
            heard.append(await next_final(connection))

    assert heard == ["Hi,", "I'm calling about my order.", "Yes.", "One,", "two, three."]
    assert fake.transcripts_sent == heard


async def test_deepgram_endpoints_before_the_finalize_which_it_answers_empty():
    """Deepgram's default endpointing (10 ms): the words come final as soon as the caller
    pauses, before the client's VAD stop; its Finalize then finds nothing left."""
    async with FakeDeepgram(transcripts=["Yes please."]) as fake:
        params = {
            "model": "nova-3-general",
            "encoding": "linear16",
            "sample_rate": RATE,
            "interim_results": "true",
            "utterance_end_ms": "1000",
        }
        async with deepgram_client(fake).listen.v1.connect(**params) as connection:
            await send_audio(connection, tone(1.2) + silence(0.3))
            messages = []
            while not (isinstance(m := await connection.recv(), ListenV1Results) and m.is_final):
                messages.append(m)
            await connection.send_finalize()
            answer = await next_result(connection)
            await send_audio(connection, silence(1.2))
            utterance_end = await asyncio.wait_for(connection.recv(), 5)

    # One interim while the caller spoke: at the stream's first second of audio.
    assert [m.is_final for m in messages] == [False]
    assert m.speech_final and not m.from_finalize
    assert m.channel.alternatives[0].transcript == "Yes please."
    assert answer.is_final and answer.from_finalize
    assert answer.channel.alternatives[0].transcript == ""
    assert isinstance(utterance_end, ListenV1UtteranceEnd)
    assert fake.sessions[0].control == ["Finalize"]


async def test_deepgram_transcribes_unscripted_lines_as_the_default_transcript():
    async with FakeDeepgram(transcripts=["Yes."], default_transcript="Okay then.") as fake:
        params = {
            "model": "nova-3-general",
            "encoding": "linear16",
            "sample_rate": RATE,
            "endpointing": "false",
        }
        async with deepgram_client(fake).listen.v1.connect(**params) as connection:
            heard = []
            for _ in range(3):
                await send_audio(connection, tone(0.3) + silence(0.2))
                await connection.send_finalize()
                heard.append(await next_final(connection))

    assert heard == ["Yes.", "Okay then.", "Okay then."]
    assert fake.unscripted_utterances == 2


async def test_deepgram_rejects_a_wrong_key_at_the_handshake():
    async with FakeDeepgram() as fake:
        client = deepgram_client(fake, api_key="wrong")
        with pytest.raises(ApiError) as error:
            async with client.listen.v1.connect(model="nova-3", encoding="linear16"):
                pass
    assert error.value.status_code == 401
    assert (fake.connections, fake.rejected) == (0, 1)


# --- FakeCartesia, with a plain websockets client speaking pipecat's messages -----------


def tts_request(context_id: str, transcript: str, *, more: bool = True) -> str:
    return json.dumps(
        {
            "transcript": transcript,
            "continue": more,
            "context_id": context_id,
            "model_id": "sonic-3.6",
            "voice": {"mode": "id", "id": "voice-1"},
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": PHONE_SAMPLE_RATE,
            },
            "add_timestamps": True,
            "use_normalized_timestamps": False,
            "language": "en",
        }
    )


def cartesia_headers(api_key: str = "sk_car_test_key") -> dict[str, str]:
    return {"X-API-Key": api_key, "Cartesia-Version": "2026-03-01"}


async def replies_until_done(websocket) -> list[dict]:
    replies = []
    while not replies or replies[-1]["type"] not in ("done", "error"):
        replies.append(json.loads(await asyncio.wait_for(websocket.recv(), 5)))
    return replies


async def test_cartesia_answers_with_audio_timestamps_and_done():
    async with (
        FakeCartesia() as fake,
        connect(fake.url, additional_headers=cartesia_headers()) as websocket,
    ):
        await websocket.send(tts_request("ctx-1", "Hello there, "))
        await websocket.send(tts_request("ctx-1", "how can I help?"))
        await websocket.send(tts_request("ctx-1", "", more=False))
        replies = await replies_until_done(websocket)
        await websocket.send(json.dumps({"context_id": "ctx-2", "model_id": "sonic-3.6"}))
        error = await replies_until_done(websocket)

    audio = b"".join(base64.b64decode(r["data"]) for r in replies if r["type"] == "chunk")
    assert len(audio) == pcm16_bytes(6 * 0.12)  # six words
    assert max(abs(s) for s in memoryview(audio).cast("h")) > 4000
    stamps = [r["word_timestamps"] for r in replies if r["type"] == "timestamps"]
    assert [w for s in stamps for w in s["words"]] == [
        "Hello",
        "there,",
        "how",
        "can",
        "I",
        "help?",
    ]
    # Timed from the context's start, across its transcripts.
    assert [t for s in stamps for t in s["start"]] == pytest.approx(
        [0, 0.12, 0.24, 0.36, 0.48, 0.6]
    )
    assert replies[-1] == {"type": "done", "context_id": "ctx-1", "status_code": 206, "done": True}
    assert error[-1]["type"] == "error" and error[-1]["context_id"] == "ctx-2"
    assert fake.transcripts == ["Hello there,", "how can I help?"]
    assert fake.said == ["Hello there, how can I help?"]  # Joined verbatim, as Cartesia does.
    assert fake.contexts["ctx-1"].done and fake.connections == 1


async def test_cartesia_streams_each_context_at_its_rate_with_timestamps_as_it_goes():
    """At 1x real time a second of speech takes a second to come, whatever else the socket
    carries, and each word's timestamp comes with its audio, not at the end."""
    eight_words = "one two three four five six seven eight."  # 0.96 s of audio
    async with (
        FakeCartesia(timing=CartesiaTiming.at(1.0)) as fake,
        connect(fake.url, additional_headers=cartesia_headers()) as websocket,
    ):
        sent = time.monotonic()
        await websocket.send(tts_request("ctx-1", eight_words, more=False))
        await websocket.send(tts_request("ctx-2", eight_words, more=False))
        arrivals: dict[str, list[tuple[float, dict]]] = {"ctx-1": [], "ctx-2": []}
        while not all(a and a[-1][1]["type"] == "done" for a in arrivals.values()):
            reply = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            arrivals[reply["context_id"]].append((time.monotonic() - sent, reply))

    for context in arrivals.values():
        chunks = [t for t, r in context if r["type"] == "chunk"]
        assert chunks[0] >= CartesiaTiming().first_audio_secs
        # Streamed over about the audio's length, not sent at once.
        assert chunks[-1] - chunks[0] >= 0.96 - 0.04 - 0.02
        stamps = [t for t, r in context if r["type"] == "timestamps"]
        assert len(stamps) == 8 and stamps[0] < chunks[4]
    # Side by side: the second context did not wait for the first.
    assert arrivals["ctx-2"][-1][0] < 0.135 + 0.96 + 0.5


async def test_cartesia_rejects_a_wrong_key_and_can_be_killed():
    async with FakeCartesia() as fake:
        with pytest.raises(InvalidStatus) as error:
            async with connect(fake.url, additional_headers=cartesia_headers("wrong")):
                pass
        assert error.value.response.status_code == 401
        async with connect(fake.url, additional_headers=cartesia_headers()) as websocket:
            await websocket.send(tts_request("ctx-1", "Hi.", more=False))
            await replies_until_done(websocket)
            await fake.kill()
            await asyncio.wait_for(websocket.wait_closed(), 2)
        with pytest.raises(OSError):
            await connect(fake.url, additional_headers=cartesia_headers())
    assert (fake.connections, fake.rejected) == (1, 1)
