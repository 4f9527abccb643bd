"""The bot's configuration from the environment: read once, validated once, every problem named.

What the bot needs in one place: BotSettings, with Twilio's settings inside it, the error
naming every problem, and the secrets the logs redact. (The operator's scripts read
config/twilio.py and config/environment.py directly, without the bot's heavier imports.)
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot_runtime.config.agent_file import (
    DEFAULT_AGENT_FILE,
    TEXT_KEYS,
    AgentFile,
    read_agent_file,
)
from bot_runtime.config.call_records import RecordDelivery, read_call_records
from bot_runtime.config.environment import ConfigError, EnvReader, secrets_of
from bot_runtime.config.languages import Languages, read_languages, service_problems
from bot_runtime.config.observability import TracingSettings, read_observability
from bot_runtime.config.providers import LOCAL, BackupLLM, BackupTTS, read_backups, read_services
from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.logs import SECRET
from bot_runtime.tools.python import TOOLS_FILE, load_python_tools
from bot_runtime.turns.barge_in import BARGE_IN_LEVEL_DB, BARGE_IN_MIN_WORDS

__all__ = ["BotSettings", "ConfigError", "TwilioSettings", "secrets_of"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, efficient voice assistant answering a phone call. "
    "Your words are spoken aloud over a phone line: answer in one or two short sentences, "
    "use plain words, and never use lists, markdown, emojis or symbols. "
    "Ask one question at a time. "
    "When the caller says goodbye or has nothing more to ask, call the end_call function."
)
# SmolLM2-135M, the local LLM, loses the thread of a long prompt and ignores facts in it; every
# prompt token also costs CPU time before the first word. Keep its prompt to a few words.
DEFAULT_LOCAL_SYSTEM_PROMPT = (
    "You are a friendly assistant on a phone call. Reply in one short sentence."
)
DEFAULT_GREETING = "Hello, thanks for calling! How can I help you today?"
DEFAULT_GOODBYE = "Thanks for calling. Goodbye!"
DEFAULT_SILENCE_PROMPT = "Are you still there?"
DEFAULT_VOICEMAIL_MESSAGE = (
    "Hello, this is an automated assistant calling. Please call us back when you can. Goodbye."
)


@dataclass(frozen=True)
class BotSettings:
    """Everything one bot process needs, read once at start-up."""

    stt_provider: str
    llm_provider: str
    tts_provider: str
    openai_api_key: str | None = field(metadata=SECRET, repr=False)
    openai_base_url: str | None
    openai_model: str
    deepgram_api_key: str = field(metadata=SECRET, repr=False)
    deepgram_base_url: str | None
    cartesia_api_key: str = field(metadata=SECRET, repr=False)
    cartesia_url: str | None
    cartesia_voice_id: str
    cartesia_model: str
    backup_llm: BackupLLM | None
    backup_tts: BackupTTS | None
    twilio: TwilioSettings
    stream_secret: str | None = field(metadata=SECRET, repr=False)
    agent: AgentFile
    # The languages calls can be in (the agent file's), the default built from the texts below.
    languages: Languages
    system_prompt: str
    greeting: str
    goodbye: str
    silence_prompt: str
    silence_timeout_secs: float
    turn_end_silence_secs: float
    speech_start_secs: float
    preemptive_replies: bool
    barge_in_level_db: float
    barge_in_min_words: int
    max_call_secs: float
    outbound_greeting_delay_secs: float
    voicemail_message: str
    response_timeout_secs: float
    transfer_number: str | None
    record_calls: bool
    recording_notice: bool
    # The business's URLs may carry user:password, so no repr shows them either.
    recording_status_callback: str | None = field(repr=False)
    transfer_whisper_url: str | None = field(repr=False)
    call_webhook_url: str | None = field(repr=False)
    call_webhook_secret: str | None = field(metadata=SECRET, repr=False)
    call_record_spool_dir: Path
    log_level: str
    tracing: TracingSettings | None  # None: no OTLP endpoint, no tracing

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "BotSettings":
        """Read and validate the whole environment; raises ConfigError naming every problem."""
        reader = EnvReader(env)
        services = read_services(reader)
        services |= read_backups(reader, primary=services)
        agent = _read_agent_file(reader)
        conversation = _read_conversation(reader, agent=agent, services=services)
        settings = cls(
            **services,
            twilio=TwilioSettings.read(reader),
            stream_secret=reader.text("STREAM_SECRET"),
            agent=agent,
            languages=_read_languages(
                reader, agent=agent, texts=conversation, voice_id=services["cartesia_voice_id"]
            ),
            **conversation,
            **_read_call_control(reader),
            **read_call_records(reader),
            **read_observability(reader),
        )
        _check_call_control(settings, reader.problems)
        reader.problems += language_problems(settings)[0]
        reader.raise_if_problems()
        return settings

    @property
    def record_delivery(self) -> RecordDelivery | None:
        """Where call records go, or None without CALL_WEBHOOK_URL."""
        if not (self.call_webhook_url and self.call_webhook_secret):
            return None
        return RecordDelivery(
            url=self.call_webhook_url,
            secret=self.call_webhook_secret,
            spool_dir=self.call_record_spool_dir,
        )


def _read_agent_file(reader: EnvReader) -> AgentFile:
    """The agent file: AGENT_FILE, else agent.toml at the project root (optional)."""
    named = reader.text("AGENT_FILE")
    path = Path(named) if named else DEFAULT_AGENT_FILE
    shown_as = named or path.name  # Messages name the file as the user gave it.
    agent = read_agent_file(
        path, env=reader.env, required=bool(named), problems=reader.problems, shown_as=shown_as
    )
    tools_file = str(Path(shown_as).parent / TOOLS_FILE)
    python_tools = load_python_tools(path.parent, problems=reader.problems, shown_as=tools_file)
    declared = {spec.name for spec in agent.tools}
    for spec in python_tools:
        if spec.name in declared:
            reader.problems.append(f"tool {spec.name!r} is both in {shown_as} and {tools_file}")
    return replace(agent, python_tools=python_tools)


def _read_languages(
    reader: EnvReader, *, agent: AgentFile, texts: dict[str, Any], voice_id: str
) -> Languages:
    """The agent file's languages; the default one speaks the top-level texts."""
    return read_languages(
        shown_as=agent.shown_as,
        default=agent.language,
        analysis=agent.analysis_language,
        detect=agent.detect_language,
        tables=agent.languages,
        numbers=agent.numbers,
        texts=texts,
        given_texts=frozenset(
            key for key in TEXT_KEYS if key in agent.texts or reader.text(key.upper())
        ),
        voice_id=voice_id,
        voice_given=reader.text("CARTESIA_VOICE_ID") is not None,
        problems=reader.problems,
    )


def language_problems(settings: BotSettings) -> tuple[list[str], list[str]]:
    """What the configured services cannot speak of the declared languages: problems (the
    bot refuses to start) and warnings (logged at start-up)."""
    backup = settings.backup_tts
    return service_problems(
        settings.languages,
        shown_as=settings.agent.shown_as,
        stt_provider=settings.stt_provider,
        tts_provider=settings.tts_provider,
        cartesia_model=settings.cartesia_model,
        local_backup_voice=backup is not None and backup.provider == LOCAL,
    )


def _read_texts(reader: EnvReader, *, agent: AgentFile, local_llm: bool) -> dict[str, str]:
    """What the bot says: each text from its environment variable, else the agent file, else
    the default."""
    defaults = {
        "system_prompt": DEFAULT_LOCAL_SYSTEM_PROMPT if local_llm else DEFAULT_SYSTEM_PROMPT,
        "greeting": DEFAULT_GREETING,
        "goodbye": DEFAULT_GOODBYE,
        "silence_prompt": DEFAULT_SILENCE_PROMPT,
        "voicemail_message": DEFAULT_VOICEMAIL_MESSAGE,
    }
    return {
        key: reader.text(key.upper(), agent.texts.get(key, default))
        for key, default in defaults.items()
    }


def _read_conversation(
    reader: EnvReader, *, agent: AgentFile, services: dict[str, Any]
) -> dict[str, Any]:
    """What the bot says and when: prompts, turn taking, silence and the time limit."""
    local_llm = services["llm_provider"] == LOCAL
    any_local = LOCAL in (services[f"{part}_provider"] for part in ("stt", "llm", "tts"))
    return {
        **_read_texts(reader, agent=agent, local_llm=local_llm),
        "silence_timeout_secs": reader.seconds("SILENCE_TIMEOUT_SECS", 8.0, minimum=1.0),
        # Quiet after the caller's last word before the bot may answer. Callers pause about
        # 0.2 s between sentences; at 0.2 a two-sentence line was sometimes answered in the
        # middle, so 0.25 (smart-turn then judges whether they are done).
        "turn_end_silence_secs": reader.seconds("TURN_END_SILENCE_SECS", 0.25, minimum=0.1),
        # 0.1 s of voice stops the bot for a caller who talks over it (pipecat's 0.2 s made
        # barge-in slow: docs/performance.md); Silero's confidence gate keeps out line noise.
        "speech_start_secs": reader.seconds("SPEECH_START_SECS", 0.1, minimum=0.05),
        # The reply starts on the caller's final words, before the turn is confirmed, and is
        # thrown away if they go on: it hides the wait for the LLM's first token at the cost
        # of an extra request now and then. Off with the local LLM, whose extra replies
        # would take CPU from the calls.
        "preemptive_replies": reader.flag("PREEMPTIVE_REPLIES", not local_llm),
        # While the bot speaks, sound more than this many dB below the caller's own speech
        # (voices in the room, a TV) does not cut it off; see barge_in.py.
        "barge_in_level_db": reader.number("BARGE_IN_LEVEL_DB", BARGE_IN_LEVEL_DB, minimum=0.0),
        # Words the caller must say to cut the bot off, acknowledgements ("okay", "mm-hm")
        # not counted; 0: their voice alone is enough. The local Whisper transcribes only
        # once the caller stops: there, words would come too late to stop the bot.
        "barge_in_min_words": int(
            reader.number(
                "BARGE_IN_MIN_WORDS",
                0 if services["stt_provider"] == LOCAL else BARGE_IN_MIN_WORDS,
                minimum=0,
                whole=True,
            )
        ),
        "max_call_secs": reader.seconds("MAX_CALL_SECS", 900.0, minimum=10.0),
        "outbound_greeting_delay_secs": reader.seconds("OUTBOUND_GREETING_DELAY_SECS", 2.0),
        # A caller owed a reply hears one (from a backup, or the recorded apology) within
        # this long after their turn; the services' own limits (services/watch.py) fit in 3 s.
        # The local models share this machine's CPU between calls: a reply can take seconds
        # there without anything being wrong.
        "response_timeout_secs": reader.seconds(
            "RESPONSE_TIMEOUT_SECS", 8.0 if any_local else 3.0, minimum=2.0
        ),
    }


def _read_call_control(reader: EnvReader) -> dict[str, Any]:
    """Transfers and recordings."""
    return {
        "transfer_number": reader.phone_number("TRANSFER_NUMBER"),
        "record_calls": reader.flag("RECORD_CALLS", False),
        "recording_notice": reader.flag("RECORDING_NOTICE", True),
        "recording_status_callback": reader.url("RECORDING_STATUS_CALLBACK", ("https:", "http:")),
        "transfer_whisper_url": reader.url("TRANSFER_WHISPER_URL", ("https:", "http:")),
    }


def _check_call_control(settings: BotSettings, problems: list[str]) -> None:
    """Transfers and recordings act on the live call through Twilio's REST API."""
    needs_rest = []
    if settings.transfer_number:
        needs_rest.append("TRANSFER_NUMBER")
    if settings.record_calls:
        needs_rest.append("RECORD_CALLS")
    if settings.transfer_whisper_url and not settings.transfer_number:
        problems.append("TRANSFER_WHISPER_URL briefs transfers: set TRANSFER_NUMBER too")
    if needs_rest and settings.twilio.missing_credentials:
        problems.append(
            f"{' and '.join(needs_rest)} need Twilio's REST API: set "
            + " and ".join(settings.twilio.missing_credentials)
        )
