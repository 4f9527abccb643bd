"""Any Python value as one JSON can hold: what a business's tool returns reaches JSON this way."""

import dataclasses
import datetime
import decimal
import math
import uuid
from collections.abc import Mapping
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` made of dicts, lists, strings, numbers, booleans and None only.

    A Python tool may return what its database driver gave it; pipecat's context
    and the call record are JSON, and ``json.dumps`` raising on a ``date`` once
    left a caller in silence. Dates and times become ISO 8601 strings; a Decimal
    its digits as a string (a float would change them: 0.1 is not 0.1); sets
    sorted lists; bytes a placeholder with their length (base64 means nothing to
    the LLM); a dataclass its fields; a non-finite float a string (JSON has no
    NaN); anything else ``str(value)``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {_key(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, set | frozenset):
        return _sorted([json_safe(item) for item in value])
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    return str(value)


def _key(key: Any) -> str:
    """JSON keys are strings; a date or number key is written as its value would be."""
    safe = json_safe(key)
    return safe if isinstance(safe, str) else str(safe)


def _sorted(items: list[Any]) -> list[Any]:
    """Sorted, so a set reads the same on every call; mixed kinds sort by their text."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)
