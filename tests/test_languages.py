"""Languages: declared in the agent file, checked at start-up, one chosen per call."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot_runtime.call.language_switch import detection_warnings
from bot_runtime.call.no_dead_air import SAY_AGAIN, say_again_in
from bot_runtime.config.languages import canonical
from bot_runtime.config.settings import BotSettings, ConfigError, language_problems

SERVICE_KEYS = {"OPENAI_API_KEY": "sk", "DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca"}
SPANISH = """
[languages.es]
greeting = "Hola, ¿en qué puedo ayudarle?"
goodbye = "Gracias por llamar. ¡Adiós!"
silence_prompt = "¿Sigue ahí?"
voicemail_message = "Hola, llámenos cuando pueda. Adiós."
voice = "spanish-voice"
prompt = "Trate al cliente de usted."

[numbers]
"+34 911 234 567" = "es"
"""


TEXTS = ("greeting", "goodbye", "silence_prompt", "voicemail_message")


def settings_with(tmp_path, agent_file: str, **env: str) -> BotSettings:
    (tmp_path / "agent.toml").write_text(agent_file)
    return BotSettings.from_env(SERVICE_KEYS | {"AGENT_FILE": str(tmp_path / "agent.toml")} | env)


def problems_of(tmp_path, agent_file: str, **env: str) -> list[str]:
    """The lines of the start-up error; none when the bot would start."""
    try:
        settings_with(tmp_path, agent_file, **env)
    except ConfigError as error:
        return str(error).splitlines()
    return []


def test_a_call_gets_its_language_from_the_parameter_then_the_called_number(tmp_path):
    languages = settings_with(tmp_path, SPANISH).languages
    spanish, english = languages.by_code["es"], languages.by_code["en"]
    assert (spanish.voice_id, spanish.stt_model) == ("spanish-voice", "nova-3-general")
    assert english.greeting.startswith("Hello") and languages.analysis == "en"
    choose = languages.choose
    assert choose(parameter="es", called_number=None) == (spanish, "parameter")
    assert choose(parameter="ES-mx", called_number=None) == (spanish, "parameter")
    assert choose(parameter="en", called_number="+34911234567") == (english, "parameter")
    assert choose(parameter=None, called_number="+34911234567") == (spanish, "called number")
    # A language nobody declared is ignored (one warning line); the next rule applies.
    assert choose(parameter="de", called_number="+34911234567") == (spanish, "called number")
    assert choose(parameter="de", called_number="+14155550999") == (english, "default")
    assert "Trate al cliente de usted." in (languages.instruction(spanish) or "")
    # After a lost turn the caller is asked again in the call's language, never in English.
    assert (say_again_in(spanish), say_again_in(english)) == ("¿Sigue ahí?", SAY_AGAIN)
    # Nothing declared: the prompt stays as it always was.
    plain = BotSettings.from_env(SERVICE_KEYS).languages
    assert plain.instruction(plain.by_code["en"]) is None


def test_language_problems_are_one_line_each_naming_the_file(tmp_path):
    agent_file = (
        SPANISH
        + """
"+1 415" = "es"
"+14155550000" = "de"

[languages.fr]
greeting = "Bonjour"

[languages.en]
greeting = "Hi"
"""
    )
    shown = str(tmp_path / "agent.toml")
    assert problems_of(tmp_path, 'language = "english"\n' + agent_file) == [
        f"{shown}: language: 'english' is not a language code (like 'es' or 'pt-BR')",
        f"{shown}: languages.fr: set goodbye, silence_prompt, voicemail_message, voice: a "
        "French call must not hear another language's words or voice",
        f"{shown}: languages.en: 'en' is the default language: its words are the top-level "
        "keys (greeting, goodbye, ...) and its voice CARTESIA_VOICE_ID",
        f"{shown}: numbers.+1 415: the number is too short: 4 digits, a number with its "
        "country code has at least 7",
        f"{shown}: numbers.+14155550000: 'de' is not a declared language (en, es)",
    ]
    # A default other than English must say its own words with its own voice.
    assert problems_of(tmp_path, 'language = "es"\ngreeting = "Hola"') == [
        f"{shown}: language: 'es' is the default: set goodbye, silence_prompt, "
        "voicemail_message in it (the built-in ones are English)",
        f"{shown}: language: 'es' is the default: set CARTESIA_VOICE_ID to a voice for it "
        "(the built-in voice is an English one)",
    ]


def test_a_language_the_services_cannot_speak_stops_the_bot_one_line_each(tmp_path):
    def language(code: str, extra: str = "") -> str:
        texts = "\n".join(f'{key} = "{code}"' for key in TEXTS)
        return f"[languages.{code}]\n{texts}\nvoice = 'v-{code}'\n{extra}\n"

    agent_file = SPANISH.split("[numbers]")[0] + language("ca") + language("ka")
    shown = str(tmp_path / "agent.toml")
    assert problems_of(tmp_path, agent_file) == [
        f"{shown}: languages.ca: Cartesia's sonic-3.6 (CARTESIA_MODEL) cannot speak Catalan (ca)",
        f"{shown}: languages.ka: Deepgram's nova-3-general cannot transcribe Georgian (ka): "
        "set its stt_model",
    ]
    # An older voice model speaks fewer languages.
    assert problems_of(tmp_path, SPANISH, CARTESIA_MODEL="sonic-2") == []
    assert problems_of(tmp_path, language("ko"), CARTESIA_MODEL="sonic-turbo") == []
    assert problems_of(tmp_path, language("uk"), CARTESIA_MODEL="sonic-2-2025-03-07") == [
        f"{shown}: languages.uk: Cartesia's sonic-2-2025-03-07 (CARTESIA_MODEL) cannot speak "
        "Ukrainian (uk)"
    ]
    # The local voice speaks English only: said at start-up, not refused.
    local = settings_with(tmp_path, SPANISH, TTS_PROVIDER="local")
    assert language_problems(local) == (
        [],
        [
            "The local voice (Piper) speaks English only: calls in Spanish (es) hear their "
            "words read with English sounds; use Cartesia for them"
        ],
    )


@pytest.fixture(scope="module")
def spanish_too(tmp_path_factory):
    return settings_with(tmp_path_factory.mktemp("agent"), SPANISH).languages


@given(parameter=st.text(max_size=30), number=st.text(max_size=30))
def test_whatever_a_stream_passes_the_call_gets_a_declared_language(spanish_too, parameter, number):
    language, why = spanish_too.choose(parameter=parameter, called_number=number)
    assert spanish_too.by_code[language.code] == language
    assert why in ("parameter", "called number", "default")
    tag = canonical(parameter)
    assert tag is None or canonical(tag) == tag


def test_what_keeps_detection_from_hearing_a_language_is_said_at_start_up(tmp_path):
    listening = SPANISH.replace("[languages.es]", "detect_language = true\n\n[languages.es]", 1)
    assert detection_warnings(settings_with(tmp_path, listening)) == []
    assert detection_warnings(settings_with(tmp_path, listening, STT_PROVIDER="local")) == [
        "detect_language needs Deepgram (the local Whisper does not switch a call): each call "
        "stays in the language its parameter, number or the default chose"
    ]
    georgian = '\n[languages.ka]\nstt_model = "whisper-large"\n' + "\n".join(
        f'{key} = "ka"' for key in (*TEXTS, "voice")
    )
    settings = settings_with(tmp_path, listening.replace("[numbers]", georgian + "\n[numbers]"))
    assert detection_warnings(settings) == [
        "detect_language: Deepgram's multilingual model does not recognise Georgian (ka): a "
        "caller speaking it is not switched to it"
    ]
