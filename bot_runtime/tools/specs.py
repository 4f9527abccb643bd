"""What every tool shares: the bot's own tool names, time limits, specs, call info, failure."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot_runtime.logs import SECRET

# The call-control tools the bot offers itself; no business tool may take their names.
END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
RESERVED_TOOL_NAMES = (END_CALL, TRANSFER_CALL)
DEFAULT_TIMEOUT_SECS = 5.0
# A tool that takes longer than this leaves the caller waiting too long whatever it returns.
MAX_TIMEOUT_SECS = 30.0


@dataclass(frozen=True)
class HttpToolSpec:
    """A tool declared in the agent file: the business's API, called over HTTP."""

    name: str
    description: str
    # Both may hold ${NAME} values, so no repr shows them.
    url: str = field(repr=False)
    method: str
    timeout_secs: float
    filler: str | None
    headers: Mapping[str, str] = field(repr=False)
    # A JSON schema of the arguments, as the LLM is shown them and as they are checked.
    properties: Mapping[str, Any]
    required: tuple[str, ...]
    # The values ${NAME} references were filled with: tokens, redacted from every log line.
    secrets: tuple[str, ...] = field(default=(), metadata=SECRET, repr=False)


@dataclass(frozen=True)
class PythonToolSpec:
    """A tool written in Python, as the LLM is shown it and as the bot runs it."""

    name: str
    description: str
    properties: Mapping[str, Any]
    required: tuple[str, ...]
    filler: str | None
    timeout_secs: float
    function: Callable[..., Awaitable[Any]]


ToolSpec = HttpToolSpec | PythonToolSpec


class ToolFailed(Exception):
    """The tool gave no usable answer; the message says why, briefly and without secrets."""


@dataclass(frozen=True)
class CallInfo:
    """The call as the business's own code sees it: its tools and its call record.

    Unlike the logs, this holds the whole phone numbers: it only goes to the
    business's own code and endpoints.
    """

    call_sid: str
    direction: str
    from_number: str | None
    to_number: str | None
    parameters: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "direction": self.direction,
            "from": self.from_number,
            "to": self.to_number,
            "parameters": dict(self.parameters),
        }
