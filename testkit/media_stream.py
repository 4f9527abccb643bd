"""Twilio Media Streams messages: Twilio's for a caller, and the bot's as Twilio reads them."""

import base64
import contextlib
import json
import secrets
from typing import Any

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit.phone_audio import MEDIA_FRAME_SECS

# Looks like an account SID but cannot be mistaken for a real one ("7e57ca11" reads "test call").
TEST_ACCOUNT_SID = "AC" + "7e57ca11" * 4
DTMF_DIGITS = "0123456789*#"
# The only messages Twilio accepts from the bot; anything else is its error 31951.
BOT_EVENTS = ("media", "clear", "mark")


def new_sid(prefix: str) -> str:
    """A fresh Twilio-style SID: two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def connected() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start(
    *,
    sequence: int,
    stream_sid: str,
    account_sid: str | None,
    call_sid: str,
    custom_parameters: dict[str, str],
) -> dict[str, Any]:
    """The ``start`` of a ``<Connect><Stream>``: the call, its parameters, 8 kHz mu-law.

    Without ``account_sid`` it is a local test client's, which names no account.
    """
    return {
        "event": "start",
        "sequenceNumber": str(sequence),
        "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid,
            **({"accountSid": account_sid} if account_sid else {}),
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": custom_parameters,
            "mediaFormat": {
                "encoding": "audio/x-mulaw",
                "sampleRate": PHONE_SAMPLE_RATE,
                "channels": 1,
            },
        },
    }


def media(*, sequence: int, stream_sid: str, chunk: int, payload: bytes) -> dict[str, Any]:
    """The caller's ``chunk``-th 20 ms of mu-law; the timestamp is ms since the stream started."""
    return {
        "event": "media",
        "sequenceNumber": str(sequence),
        "streamSid": stream_sid,
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(round(chunk * MEDIA_FRAME_SECS * 1000)),
            "payload": base64.b64encode(payload).decode(),
        },
    }


def dtmf(*, sequence: int, stream_sid: str, digit: str) -> dict[str, Any]:
    return {
        "event": "dtmf",
        "streamSid": stream_sid,
        "sequenceNumber": str(sequence),
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def mark(*, sequence: int, stream_sid: str, name: str) -> dict[str, Any]:
    """A mark echoed back: the audio the bot sent before it has played (or was cleared)."""
    return {
        "event": "mark",
        "streamSid": stream_sid,
        "sequenceNumber": str(sequence),
        "mark": {"name": name},
    }


def stop(
    *, sequence: int, stream_sid: str, account_sid: str | None, call_sid: str
) -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": str(sequence),
        "streamSid": stream_sid,
        "stop": {"accountSid": account_sid, "callSid": call_sid},
    }


def bot_message(message: str | bytes) -> dict[str, Any] | None:
    """A message from the bot that Twilio would act on, or None: JSON text of a known event."""
    if not isinstance(message, str):
        return None
    parsed = None
    with contextlib.suppress(ValueError):
        parsed = json.loads(message)
    if not isinstance(parsed, dict) or parsed.get("event") not in BOT_EVENTS:
        return None
    return parsed


def media_payload(message: dict[str, Any]) -> bytes:
    """The mu-law audio of a ``media`` message; ValueError if it is missing or not base64."""
    try:
        return base64.b64decode(message["media"]["payload"], validate=True)
    except (KeyError, TypeError) as error:
        raise ValueError(f"no media payload ({error!r})") from None
