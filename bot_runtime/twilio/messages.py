"""Twilio Media Streams' inbound messages, decoded defensively: anything Twilio would not send."""

import base64
import binascii
import json
from typing import Any

from pipecat.audio.dtmf.types import KeypadEntry

# Twilio's own messages are a few hundred bytes (a 20 ms media message is about 300);
# anything far larger is not Twilio and is dropped unread.
MAX_MESSAGE_BYTES = 64 * 1024
_KEYS = frozenset(key.value for key in KeypadEntry)


class Malformed(Exception):
    """An inbound message Twilio would not send; the message names what is wrong."""


def parse_message(data: str | bytes) -> dict[str, Any]:
    """The message as a JSON object."""
    if isinstance(data, bytes):
        raise Malformed("binary frame")
    if len(data) > MAX_MESSAGE_BYTES:
        raise Malformed(f"{len(data)}-byte message")
    try:
        message = json.loads(data)
    except ValueError:  # JSONDecodeError, or an integer too long for int()
        raise Malformed("message that is not JSON") from None
    except RecursionError:
        raise Malformed("JSON message nested too deeply") from None
    if not isinstance(message, dict):
        raise Malformed("JSON message that is not an object")
    return message


def media_payload(message: dict[str, Any]) -> bytes:
    """The mu-law audio of a ``media`` message."""
    media = message.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str):
        raise Malformed("media message without a payload")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("media message whose payload is not base64") from None


def dtmf_key(message: dict[str, Any]) -> KeypadEntry:
    """The key of a ``dtmf`` message (Twilio sends one of 0-9, * and #)."""
    dtmf = message.get("dtmf")
    digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
    if not isinstance(digit, str) or digit not in _KEYS:
        raise Malformed("dtmf message without a keypad digit")
    return KeypadEntry(digit)


def mark_name(message: dict[str, Any]) -> str:
    """The name of a ``mark`` message: the name the bot gave the mark it sent."""
    mark = message.get("mark")
    name = mark.get("name") if isinstance(mark, dict) else None
    if not isinstance(name, str):
        raise Malformed("mark message without a name")
    return name
