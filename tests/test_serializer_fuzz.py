"""The bot's Twilio serializer under generated input: no message of any shape raises out of it."""

import asyncio
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import InputAudioRawFrame, InputDTMFFrame

from bot_runtime.call.pipeline import build_serializer
from bot_runtime.config.settings import TwilioSettings
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.twilio.stream import GuardedTwilioSerializer, StreamStart
from testkit import media_stream
from testkit.media_stream import DTMF_DIGITS, TEST_ACCOUNT_SID, new_sid
from testkit.phone_audio import ulaw_to_pcm16

STREAM_SID = new_sid("MZ")
# Marks the serializer is waiting for, so that echoes of them find a waiter.
WAITED_MARKS = ("last-words-1", "fallback-2")
# Each example decodes a batch of messages, since hypothesis's cost is per draw and the
# serializer's per message: a few generated Twilio-like objects, each written two ways, and
# a few JSON values, each put in every field the serializer reads. 345 examples of 29
# messages put over 10,000 through.
OBJECTS, VALUES, RAW = 3, 3, 2
EXAMPLES = 345

# Any JSON value but nested ones, for the fields the serializer does not read.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and Infinity included: json.dumps writes them as bare literals
    | st.text(max_size=8)
)
# Any JSON value, nested a little: what a broken or hostile peer may put in any field.
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=4,
)
base64_text = st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode())


def field_or_garbage(real: st.SearchStrategy) -> st.SearchStrategy:
    """Twilio's shape for a field half the time, any JSON value the other half."""
    return real | json_values


media_body = st.fixed_dictionaries(
    {},
    optional={
        "payload": field_or_garbage(base64_text | st.text(max_size=12)),
        "track": st.just("inbound") | scalars,
        "chunk": scalars,
        "timestamp": scalars,
    },
)
dtmf_body = st.fixed_dictionaries(
    {},
    optional={
        "digit": field_or_garbage(st.sampled_from(DTMF_DIGITS) | st.text(max_size=3)),
        "track": scalars,
    },
)
mark_body = st.fixed_dictionaries(
    {}, optional={"name": field_or_garbage(st.sampled_from(WAITED_MARKS) | st.text(max_size=12))}
)
twilio_object = st.fixed_dictionaries(
    {"event": field_or_garbage(st.sampled_from(["media", "dtmf", "mark", "start", "stop"]))},
    optional={
        "streamSid": field_or_garbage(st.just(STREAM_SID)),
        "sequenceNumber": scalars,
        "media": field_or_garbage(media_body),
        "dtmf": field_or_garbage(dtmf_body),
        "mark": field_or_garbage(mark_body),
        "start": scalars,
        "stop": scalars,
    },
)
# Fields Twilio never sends, beside Twilio's own (which win where names collide).
with_strangers = st.tuples(
    twilio_object, st.dictionaries(st.text(max_size=8), scalars, max_size=2)
).map(lambda both: both[1] | both[0])
# Raw text that json.loads fails on in its less common ways (built, since their repr is long).
odd_json = st.one_of(
    st.integers(4301, 6000).map(lambda n: '{"event": "media", "sequenceNumber": ' + "9" * n + "}"),
    st.integers(2000, 30_000).map(lambda n: '{"event": ' + "[" * n + "]" * n + "}"),
    st.integers(2000, 30_000).map(lambda n: "{" * n),
    st.sampled_from(
        [
            '{"event": "dtmf", "dtmf": {"digit": "\\ud800"}}',  # a lone surrogate, escaped
            '{"event": "mark", "mark": {"name": NaN}}',
            '{"event": "media", "media": {"payload": -Infinity}}',
            '{"event": "media", "media": {"payload": "\udcff"}}',  # one in the text itself
            "",
        ]
    ),
)
raw = st.one_of(odd_json, st.text(max_size=40), st.binary(max_size=40))


def in_every_field(value: object) -> list[dict]:
    """``value`` where the serializer reads the event, the audio, the key and the mark."""
    return [
        {"event": value},
        {"event": "media", "media": value},
        {"event": "media", "media": {"payload": value}},
        {"event": "dtmf", "dtmf": value},
        {"event": "dtmf", "dtmf": {"digit": value}},
        {"event": "mark", "mark": value},
        {"event": "mark", "mark": {"name": value}},
    ]


def batch(objects: list[dict], values: list[object], raw_messages: list[str | bytes]) -> list:
    messages: list[str | bytes] = []
    for obj in objects:
        messages += [json.dumps(obj), json.dumps(obj, ensure_ascii=False)]
    for value in values:
        messages += [json.dumps(obj) for obj in in_every_field(value)]
    return messages + raw_messages


@contextmanager
def bot_serializer() -> Iterator[tuple[asyncio.Runner, GuardedTwilioSerializer]]:
    """The serializer as a call builds it (credentials, so auto hang-up on), after its setup."""
    start = StreamStart(stream_sid=STREAM_SID, call_sid=new_sid("CA"), account_sid=None)
    twilio = TwilioSettings(account_sid=TEST_ACCOUNT_SID, auth_token="fuzz-auth-token")
    with asyncio.Runner() as runner:
        serializer = build_serializer(start, twilio, speech_hold=SpeechHold())
        setup = type("Setup", (), {"audio_in_sample_rate": PHONE_SAMPLE_RATE})()
        runner.run(serializer.setup(setup))
        yield runner, serializer


def test_no_message_of_any_shape_raises_out_of_the_serializer():
    decoded = 0
    with bot_serializer() as (runner, serializer):
        for name in WAITED_MARKS:
            serializer.mark_message(name)

        async def decode(messages: list[str | bytes]) -> None:
            nonlocal decoded
            for data in messages:
                frame = await serializer.deserialize(data)
                assert frame is None or isinstance(frame, (InputAudioRawFrame, InputDTMFFrame))
                decoded += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            objects=st.lists(with_strangers, min_size=OBJECTS, max_size=OBJECTS),
            values=st.lists(json_values, min_size=VALUES, max_size=VALUES),
            raw_messages=st.lists(raw, min_size=RAW, max_size=RAW),
        )
        def decode_batch(objects, values, raw_messages) -> None:
            runner.run(decode(batch(objects, values, raw_messages)))

        decode_batch()
    assert decoded >= 10_000


@settings(max_examples=100, deadline=None, database=None)
@given(
    caller_audio=st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=8),
    keys=st.lists(st.sampled_from(DTMF_DIGITS), min_size=1, max_size=4),
)
def test_twilio_s_own_media_and_dtmf_messages_still_come_through(caller_audio, keys):
    with bot_serializer() as (runner, serializer):

        async def decode_the_call() -> tuple[bytes, list[str], bool]:
            heard = bytearray()
            pressed = []
            for sequence, payload in enumerate(caller_audio):
                media = media_stream.media(
                    sequence=sequence, stream_sid=STREAM_SID, chunk=sequence, payload=payload
                )
                frame = await serializer.deserialize(json.dumps(media))
                if frame is not None:
                    assert isinstance(frame, InputAudioRawFrame)
                    heard += frame.audio
            for sequence, key in enumerate(keys):
                dtmf = media_stream.dtmf(sequence=sequence, stream_sid=STREAM_SID, digit=key)
                frame = await serializer.deserialize(json.dumps(dtmf))
                assert isinstance(frame, InputDTMFFrame)
                pressed.append(frame.button.value)
            serializer.mark_message("goodbye-1")
            echo = media_stream.mark(sequence=0, stream_sid=STREAM_SID, name="goodbye-1")
            assert await serializer.deserialize(json.dumps(echo)) is None
            return (
                bytes(heard),
                pressed,
                await serializer.wait_for_mark("goodbye-1", timeout_secs=1),
            )

        heard, pressed, mark_echoed = runner.run(decode_the_call())
    sent = ulaw_to_pcm16(b"".join(caller_audio))
    # The audio comes out in whole 40 ms frames, in order: all of it but the last part frame.
    assert sent.startswith(heard) and len(sent) - len(heard) < 640
    assert pressed == keys and mark_echoed
