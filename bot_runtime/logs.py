"""Logs: each line of a call tagged with its callSid, phone numbers masked, secrets redacted."""

import re
import sys
from collections.abc import Callable, Iterable

from loguru import logger

from bot_runtime.phone_numbers import mask

# Marks a setting whose value must never reach a log line (config.environment.secrets_of finds
# them for the scrubber below); its field also takes repr=False, so no repr shows it.
SECRET = {"secret": True}
# An E.164 number anywhere in a log line, whoever wrote it (our code or a library's).
_PHONE_NUMBER = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)")
# Shorter values are not worth redacting (and would mangle ordinary words).
_MIN_SECRET_CHARS = 6
# LOG_LEVEL's choices, most detailed first. DEBUG adds the bot's own detail (its turn
# decisions); pipecat's DEBUG lines (every frame's processor, the whole LLM context of each
# turn) would bury them, so they come only at TRACE.
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR")
_LIBRARY_FLOOR = "INFO"
# Library warnings that say nothing an operator can act on, by logger name and text, so that a
# warning in the log always means something. TurnAnalyzerUserTurnStopStrategy warns once per
# call that the VAD's stop time is not its 0.2 s: by design here, since the VAD's stop is
# counted from the caller's words (turns.shared_models.SILERO_TRAIL_SECS).
_EXPECTED_WARNINGS = [
    (
        "pipecat.turns.user_stop.turn_analyzer_user_turn_stop_strategy",
        "differs from the recommended default",
    ),
]


def configure_logging(*, secrets: Iterable[str | None], level: str = "INFO") -> None:
    """Send logs at ``level`` and above to stderr, every line passing through the scrubber.

    The scrubber is installed as loguru's patcher, so it applies to every sink,
    including any a hosting process adds later. ``diagnose=False``: loguru's default
    prints every variable's value in a traceback, the caller's number and the keys among
    them, and the scrubber sees only the message.
    """
    logger.remove()
    logger.configure(patcher=_scrubber([s for s in secrets if s]))
    logger.add(
        sys.stderr,
        level=level,
        format="{time:HH:mm:ss.SSS} | {level: <7} | {name}:{line} - {message}",
        filter=_worth_showing(library_floor=None if level == "TRACE" else _LIBRARY_FLOOR),
        diagnose=False,
    )


def scrubbed(text: str, *, secrets: Iterable[str]) -> str:
    """``text`` with every E.164 number masked and every secret redacted.

    ``secrets`` shorter than a few characters are left alone (they would mangle words).
    """
    text = _PHONE_NUMBER.sub(lambda match: mask(match.group()), text)
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "[redacted]")
    return text


def _worth_showing(*, library_floor: str | None) -> Callable[[dict], bool]:
    floor = logger.level(library_floor).no if library_floor else 0

    def worth_showing(record: dict) -> bool:
        if record["level"].no < floor and (record["name"] or "").startswith("pipecat"):
            return False
        return not any(
            record["name"] == name and text in record["message"]
            for name, text in _EXPECTED_WARNINGS
        )

    return worth_showing


def _scrubber(secrets: list[str]) -> Callable[[dict], None]:
    def scrub(record: dict) -> None:
        message = scrubbed(record["message"], secrets=secrets)
        call_sid = record["extra"].get("call_sid")
        record["message"] = f"[{call_sid}] {message}" if call_sid else message

    return scrub
