"""The languages an agent speaks: each one's words, voice and models, and which one a call gets."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from loguru import logger

from bot_runtime.phone_numbers import PhoneNumberError, e164

DEFAULT_LANGUAGE = "en"
# The Deepgram model every language uses unless its table names another (stt_model).
DEFAULT_STT_MODEL = "nova-3-general"
# The Cartesia model pipecat 1.14 asks for when none is named; CARTESIA_MODEL changes it.
DEFAULT_CARTESIA_MODEL = "sonic-3.6"
# The stream's custom parameter (a TwiML <Parameter>) that picks a call's language.
LANGUAGE_PARAMETER = "language"
# What a [languages.XX] table may hold. A caller must never hear another language's words or
# voice: the texts the bot speaks and the voice are required, the prompt line and model not.
LANGUAGE_KEYS = (
    "greeting",
    "goodbye",
    "silence_prompt",
    "voicemail_message",
    "voice",
    "prompt",
    "stt_model",
    "say_again",
)
REQUIRED_LANGUAGE_KEYS = ("greeting", "goodbye", "silence_prompt", "voicemail_message", "voice")
# The texts a default language other than English must set: the built-in ones are English.
SPOKEN_TEXTS = ("greeting", "goodbye", "silence_prompt", "voicemail_message")
# A language tag as BCP 47 writes it: "es", "pt-BR", "zh-Hant", "es-419".
_CODE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")

# English names, for the LLM's instruction and for messages (a code alone, "ka", reads badly).
NAMES = {
    "ar": "Arabic", "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "bs": "Bosnian",
    "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French",
    "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ka": "Georgian", "kn": "Kannada",
    "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam",
    "mr": "Marathi", "ms": "Malay", "nl": "Dutch", "no": "Norwegian", "pa": "Punjabi",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "ta": "Tamil", "te": "Telugu",
    "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese",
    "zh": "Chinese",
}  # fmt: skip

# What each service's models speak, by base language code (a regional tag such as "pt-BR" is
# checked by its base, "pt"). Sources, as published by the providers:
# - Cartesia: docs.cartesia.ai, "TTS models": the Sonic 3 family (sonic-3, sonic-3.5,
#   sonic-3.6) speaks 42 languages; sonic-2, sonic-turbo and sonic speak 15.
# - Deepgram: developers.deepgram.com, "Models & Languages Overview" and the Nova-3 changelog
#   entries (Aug 2025 to Mar 2026) adding its monolingual languages; Nova-2's 36 languages
#   (changelog, May 2024).
# A model missing here is not checked (a warning at start-up says so).


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SONIC_2 = _codes("en fr de es pt zh ja hi it ko nl pl ru sv tr")
_SONIC_3 = _SONIC_2 | _codes(
    "tl bg ro ar cs el fi hr ms sk da ta uk hu no vi bn th he ka id te gu kn ml mr pa"
)
CARTESIA_LANGUAGES = {"sonic-3": _SONIC_3, "sonic-2": _SONIC_2, "sonic": _SONIC_2}
_SONIC_1 = re.compile(r"sonic(-\d{4}-\d\d-\d\d)?")
_NOVA_2 = _codes(
    "bg ca zh cs da nl en et fi fr de el hi hu id it ja ko lv lt ms no pl pt ro ru sk es sv "
    "th tr uk vi"
)
_NOVA_3 = _NOVA_2 | _codes("be bn bs hr kn mk mr sr sl ta tl te")
DEEPGRAM_LANGUAGES = {
    "nova-3": _NOVA_3,
    "nova-3-general": _NOVA_3,
    "nova-2": _NOVA_2,
    "nova-2-general": _NOVA_2,
}


@dataclass(frozen=True)
class Language:
    """One language a call can be in: what the bot says in it, and with which voice and model."""

    code: str
    greeting: str
    goodbye: str
    silence_prompt: str
    voicemail_message: str
    # A line added to the system prompt for calls in this language (the agent file's `prompt`).
    prompt_line: str | None
    voice_id: str
    stt_model: str
    # Said when the speech-to-text lost the caller's words (the agent file's `say_again`);
    # None: the built-in English line, or in another language its silence prompt.
    say_again: str | None = None

    @property
    def name(self) -> str:
        """The language as the LLM's instruction and the logs name it: "Spanish (es)"."""
        return _named(self.code)

    @property
    def plain_name(self) -> str:
        """The language's English name ("Spanish"), or its code when this file has none."""
        return NAMES.get(base(self.code), self.code)


@dataclass(frozen=True)
class Languages:
    """The languages the agent speaks, the default among them, and how a call picks one."""

    default: str
    # Every language, the default included (built from the top-level texts and voice).
    by_code: Mapping[str, Language]
    # Called number (E.164) -> language code.
    by_number: Mapping[str, str] = field(default_factory=dict)
    # Hear the caller's language and switch to it once (detect_language).
    detect: bool = False
    # The language of post-call analysis, summaries and transfer briefs.
    analysis: str = DEFAULT_LANGUAGE

    @property
    def declared(self) -> bool:
        """Whether the agent file speaks of languages at all; if not, calls go as before."""
        return len(self.by_code) > 1 or self.default != DEFAULT_LANGUAGE or self.detect

    @property
    def analysis_name(self) -> str:
        """The language the operator reads the analysis in, named: "English (en)"."""
        return _named(self.analysis)

    def find(self, code: str | None) -> Language | None:
        """The declared language ``code`` names: exactly, else by its base ("es-MX": "es")."""
        tag = canonical(code or "")
        if tag is None:
            return None
        if tag in self.by_code:
            return self.by_code[tag]
        return next((lang for lang in self.by_code.values() if lang.code == base(tag)), None)

    def choose(self, *, parameter: str | None, called_number: str | None) -> tuple[Language, str]:
        """The call's language and why: "parameter", "called number" or "default".

        First match wins: the ``language`` parameter, the called number's entry in
        [numbers], the default. A parameter naming no declared language is said in one
        warning line and ignored (the next rule applies): a typo in a TwiML Bin must
        not cost the caller the call.
        """
        if parameter:
            found = self.find(parameter)
            if found is not None:
                return found, "parameter"
            logger.warning(
                f"The {LANGUAGE_PARAMETER} parameter {parameter[:20]!r} is not a language the "
                f"agent file declares ({', '.join(self.by_code)}): ignored"
            )
        number = _e164_or_none(called_number)
        if number in self.by_number:
            return self.by_code[self.by_number[number]], "called number"
        return self.by_code[self.default], "default"

    def instruction(self, language: Language) -> str | None:
        """The system prompt's language lines for a call in ``language``; None when the agent
        file declares no languages (the prompt stays as it always was)."""
        if not self.declared:
            return None
        lines = [
            f"This call is in {language.name}. Say everything in {language.plain_name}, even "
            "when the caller's details, a tool's result or these instructions are in another "
            "language."
        ]
        if language.prompt_line:
            lines.append(language.prompt_line)
        return "\n".join(lines)

    def reminder(self, language: Language) -> str | None:
        """What the LLM is told right after a tool's result, which may be in any language."""
        if not self.declared:
            return None
        return f"Answer the caller in {language.name}, whatever language the result is in."


def canonical(code: str) -> str | None:
    """``code`` as BCP 47 writes it ("pt-br" -> "pt-BR", "zh-hant" -> "zh-Hant"), or None
    when it is no language tag."""
    code = code.strip().replace("_", "-")
    if not _CODE.fullmatch(code):
        return None
    first, *rest = code.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def _named(code: str) -> str:
    known = NAMES.get(base(code))
    return f"{known} ({code})" if known else code


def base(code: str) -> str:
    """The language of a tag without its region or script: "pt-BR" -> "pt"."""
    return code.split("-")[0].lower()


def _e164_or_none(number: str | None) -> str | None:
    if not number:
        return None
    try:
        return e164(number, what="the called number")
    except PhoneNumberError:
        return None


def read_languages(
    *,
    shown_as: str,
    default: str | None,
    analysis: str | None,
    detect: bool,
    tables: Mapping[str, Mapping[str, str]],
    numbers: Mapping[str, str],
    texts: Mapping[str, str],
    given_texts: frozenset[str],
    voice_id: str,
    voice_given: bool,
    problems: list[str],
) -> Languages:
    """The agent's languages from the agent file's keys, one line per problem in ``problems``.

    ``texts`` are the top-level texts as the bot will use them (environment, file or
    built-in), the default language's; ``given_texts`` those not built-in, and
    ``voice_given`` whether CARTESIA_VOICE_ID was set: the built-in ones are English.
    """

    def problem(where: str, message: str) -> None:
        problems.append(f"{shown_as}: {where}: {message}")

    default_code = DEFAULT_LANGUAGE
    if default is not None:
        default_code = canonical(default) or DEFAULT_LANGUAGE
        if canonical(default) is None:
            problem("language", f"{default!r} is not a language code (like 'es' or 'pt-BR')")
    analysis_code = default_code
    if analysis is not None:
        analysis_code = canonical(analysis) or default_code
        if canonical(analysis) is None:
            problem(
                "analysis_language", f"{analysis!r} is not a language code (like 'es' or 'pt-BR')"
            )
    if base(default_code) != DEFAULT_LANGUAGE:
        missing = [key for key in SPOKEN_TEXTS if key not in given_texts]
        if missing:
            problem(
                "language",
                f"{default_code!r} is the default: set {', '.join(missing)} in it "
                "(the built-in ones are English)",
            )
        if not voice_given:
            problem(
                "language",
                f"{default_code!r} is the default: set CARTESIA_VOICE_ID to a voice for it "
                "(the built-in voice is an English one)",
            )
    by_code = {
        default_code: Language(
            code=default_code,
            greeting=texts["greeting"],
            goodbye=texts["goodbye"],
            silence_prompt=texts["silence_prompt"],
            voicemail_message=texts["voicemail_message"],
            prompt_line=None,
            voice_id=voice_id,
            stt_model=DEFAULT_STT_MODEL,
        )
    }
    for raw_code, table in tables.items():
        where = f"languages.{raw_code}"
        code = canonical(raw_code)
        if code is None:
            problem(where, "not a language code (like 'es' or 'pt-BR')")
            continue
        if code == default_code:
            problem(
                where,
                f"{code!r} is the default language: its words are the top-level keys "
                "(greeting, goodbye, ...) and its voice CARTESIA_VOICE_ID",
            )
            continue
        if code in by_code:
            problem(where, f"{code!r} is declared twice")
            continue
        missing = [key for key in REQUIRED_LANGUAGE_KEYS if key not in table]
        if missing:
            problem(
                where,
                f"set {', '.join(missing)}: a {NAMES.get(base(code), code)} call must not "
                "hear another language's words or voice",
            )
            continue
        by_code[code] = Language(
            code=code,
            greeting=table["greeting"],
            goodbye=table["goodbye"],
            silence_prompt=table["silence_prompt"],
            voicemail_message=table["voicemail_message"],
            prompt_line=table.get("prompt"),
            voice_id=table["voice"],
            stt_model=table.get("stt_model", DEFAULT_STT_MODEL),
            say_again=table.get("say_again"),
        )
    by_number = {}
    for number, code in numbers.items():
        where = f"numbers.{number}"
        try:
            e164_number = e164(number, what="the number")
        except PhoneNumberError as error:
            problem(where, str(error))
            continue
        language = canonical(code)
        if language not in by_code:
            declared = ", ".join(by_code)
            problem(where, f"{code!r} is not a declared language ({declared})")
            continue
        by_number[e164_number] = language
    return Languages(
        default=default_code,
        by_code=by_code,
        by_number=by_number,
        detect=detect,
        analysis=analysis_code,
    )


def service_problems(
    languages: Languages,
    *,
    shown_as: str,
    stt_provider: str,
    tts_provider: str,
    cartesia_model: str,
    local_backup_voice: bool,
) -> tuple[list[str], list[str]]:
    """What the configured services cannot speak: problems (the bot refuses to start) and
    warnings (it starts and says so), one line each, naming where the language is declared."""
    problems: list[str] = []
    warnings: list[str] = []

    def where(lang: Language) -> str:
        at = "language" if lang.code == languages.default else f"languages.{lang.code}"
        return f"{shown_as}: {at}"

    others = [lang for lang in languages.by_code.values() if base(lang.code) != DEFAULT_LANGUAGE]
    if tts_provider == "cartesia":
        speaks = _cartesia_languages(cartesia_model)
        if speaks is None:
            warnings.append(
                f"Cartesia model {cartesia_model!r} is not one whose languages this bot knows: "
                "the declared languages are not checked against it"
            )
        else:
            problems += [
                f"{where(lang)}: Cartesia's {cartesia_model} (CARTESIA_MODEL) cannot speak "
                f"{lang.name}"
                for lang in languages.by_code.values()
                if base(lang.code) not in speaks
            ]
    elif others:
        warnings.append(
            "The local voice (Piper) speaks English only: calls in "
            + ", ".join(lang.name for lang in others)
            + " hear their words read with English sounds; use Cartesia for them"
        )
    if stt_provider == "deepgram":
        for lang in languages.by_code.values():
            hears = DEEPGRAM_LANGUAGES.get(lang.stt_model)
            if hears is None:
                warnings.append(
                    f"Deepgram model {lang.stt_model!r} (for {lang.name}) is not one whose "
                    "languages this bot knows: not checked"
                )
            elif base(lang.code) not in hears:
                problems.append(
                    f"{where(lang)}: Deepgram's {lang.stt_model} cannot transcribe {lang.name}"
                    + ("" if lang.code == languages.default else ": set its stt_model")
                )
    if tts_provider == "cartesia" and local_backup_voice and others:
        warnings.append(
            "The local backup voice speaks English only: calls in "
            + ", ".join(lang.name for lang in others)
            + " go without a backup voice (the recorded apology plays if Cartesia fails)"
        )
    return problems, warnings


def _cartesia_languages(model: str) -> frozenset[str] | None:
    """The languages of a Cartesia model, its dated snapshots ("sonic-3-2026-01-12") included."""
    if model.startswith("sonic-3"):
        return CARTESIA_LANGUAGES["sonic-3"]
    if model.startswith(("sonic-2", "sonic-turbo")) or _SONIC_1.fullmatch(model):
        return CARTESIA_LANGUAGES["sonic"]
    return None
