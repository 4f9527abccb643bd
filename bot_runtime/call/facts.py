"""What the bot knows about a call: the TwiML parameters, as facts for the LLM and the logs."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from loguru import logger

from bot_runtime.config.languages import LANGUAGE_PARAMETER
from bot_runtime.phone_line import STREAM_SECRET_PARAMETER
from bot_runtime.phone_numbers import mask
from bot_runtime.tools.specs import CallInfo

# Parameters with a meaning of their own; the rest are passed to the LLM as they are.
ROUTING_PARAMETERS = {"_pipecatCloudServiceHost", STREAM_SECRET_PARAMETER}
NUMBER_PARAMETERS = {"from_number", "to_number", "call_type"}
# The call's language is said to the LLM by its own instruction, once chosen: a parameter
# naming a language the agent does not speak must not reach it as a fact.
CHOICE_PARAMETERS = {LANGUAGE_PARAMETER}
# Extra parameters are bounded: they come from whoever wrote the TwiML and land in every
# LLM request, so a runaway one must not blow up the prompt.
MAX_EXTRA_FACTS = 20
MAX_FACT_NAME_CHARS = 64
MAX_FACT_VALUE_CHARS = 256


@dataclass(frozen=True)
class CallFacts:
    """The call's direction, numbers and extra parameters (campaign_id, customer_id, ...)."""

    outbound: bool = False
    from_number: str | None = None
    to_number: str | None = None
    # The language the stream asked for (the `language` parameter), not yet checked.
    language: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    dropped: int = 0

    @classmethod
    def from_parameters(cls, parameters: dict[str, str]) -> "CallFacts":
        """Read the stream's custom parameters, keeping at most MAX_EXTRA_FACTS extras."""
        call_type = parameters.get("call_type", "inbound").strip().lower()
        if call_type not in ("inbound", "outbound"):
            logger.warning(f"Unknown call_type {call_type[:20]!r}; treating the call as inbound")
        extra: dict[str, str] = {}
        dropped = 0
        for name, value in parameters.items():
            if name in ROUTING_PARAMETERS | NUMBER_PARAMETERS | CHOICE_PARAMETERS:
                continue
            if len(extra) >= MAX_EXTRA_FACTS or len(name) > MAX_FACT_NAME_CHARS:
                dropped += 1
                continue
            extra[name] = value[:MAX_FACT_VALUE_CHARS]
        return cls(
            outbound=call_type == "outbound",
            from_number=parameters.get("from_number") or None,
            to_number=parameters.get("to_number") or None,
            language=parameters.get(LANGUAGE_PARAMETER) or None,
            extra=extra,
            dropped=dropped,
        )

    @property
    def our_number(self) -> str | None:
        """The business's own number on this call: the called one inbound, the caller ID
        outbound (what [numbers] in the agent file maps to a language)."""
        return self.from_number if self.outbound else self.to_number

    @property
    def direction(self) -> str:
        return "outbound" if self.outbound else "inbound"

    def describe(self) -> str:
        """The facts as a few lines for the system prompt."""
        lines = [f"Call direction: {self.direction}."]
        if self.outbound:
            lines.append("You placed this call; the person who answers did not expect it.")
        if self.from_number:
            lines.append(f"Caller number (From): {self.from_number}.")
        if self.to_number:
            lines.append(f"Called number (To): {self.to_number}.")
        lines += [f"{name}: {value}" for name, value in self.extra.items()]
        return "\n".join(lines)

    def for_log(self) -> str:
        """A one-line description with the numbers masked."""
        parts = [self.direction, f"from {mask(self.from_number)}", f"to {mask(self.to_number)}"]
        if self.extra:
            parts.append("parameters " + ", ".join(sorted(self.extra)))
        if self.dropped:
            parts.append(f"{self.dropped} parameters over the limit dropped")
        return "; ".join(parts)

    def info(self, call_sid: str, parameters: Mapping[str, str]) -> CallInfo:
        """The call as the business's code sees it: the parameters without the stream
        secret and Pipecat Cloud's own."""
        shared = {
            name: value
            for name, value in parameters.items()
            if name != STREAM_SECRET_PARAMETER and not name.startswith("_")
        }
        return CallInfo(call_sid, self.direction, self.from_number, self.to_number, shared)
