"""Recorded prompts per language: made with its Cartesia voice, the default's as fallback."""

import shutil
import tomllib

import pytest
from loguru import logger

from bot_runtime.call.recorded_prompts import PROMPTS_DIR, Prompt, load_prompts, read_prompt
from operator_tools.record_prompts import main
from testkit.fakes import FakeCartesia
from testkit.operator_scripts import call_main

pytest_plugins = ["testkit.operator_fixtures"]

AGENT_FILE = """
[languages.es]
greeting = "Hola, ¿en qué puedo ayudarle?"
goodbye = "Gracias por llamar. ¡Adiós!"
silence_prompt = "¿Sigue ahí?"
voicemail_message = "Llámenos cuando pueda. ¡Adiós!"
voice = "spanish-voice"

[languages.fr]
greeting = "Bonjour, comment puis-je vous aider ?"
goodbye = "Merci de votre appel. Au revoir !"
silence_prompt = "Vous êtes toujours là ?"
voicemail_message = "Rappelez-nous quand vous pourrez. Au revoir !"
voice = "french-voice"
"""


@pytest.fixture
async def cartesia(operator_env, monkeypatch):
    """The fake Cartesia, and a project whose agent file declares Spanish and French."""
    (operator_env / "agent.toml").write_text(AGENT_FILE)
    async with FakeCartesia() as fake:
        for name, value in {
            "AGENT_FILE": "agent.toml",
            "CARTESIA_API_KEY": fake.api_key,
            "CARTESIA_URL": fake.url,
        }.items():
            monkeypatch.setenv(name, value)
        yield fake


async def test_a_languages_prompts_are_recorded_with_its_voice_and_others_fall_back(
    cartesia, operator_env
):
    prompts = operator_env / "prompts"
    prompts.mkdir()
    for default in PROMPTS_DIR.glob("*.wav"):
        shutil.copy(default, prompts)

    result = await call_main(main, "--language", "es", "--out", str(prompts / "es"))

    assert result.code == 0, result.err
    assert result.out.startswith(
        "Recorded 4 prompts in Spanish (es) with Cartesia voice spanish-voice (sonic-3.6) into "
    )
    spanish = tomllib.loads((PROMPTS_DIR / "texts.toml").read_text())["es"]
    contexts = list(cartesia.contexts.values())
    assert [c.spoken for c in contexts] == [spanish[p.value] for p in Prompt if p.spoken]
    assert {(c.voice_id, c.language, c.model_id, c.sample_rate) for c in contexts} == {
        ("spanish-voice", "es", "sonic-3.6", 8000)
    }

    # The bot reads them at start-up: Spanish calls hear them, French ones the English
    # prompts, and one line says which language lacks its own.
    warnings: list[str] = []
    sink = logger.add(warnings.append, level="WARNING", format="{message}")
    try:
        loaded = load_prompts(default="en", languages=["en", "es", "fr"], directory=prompts)
    finally:
        logger.remove(sink)
    assert [w.strip() for w in warnings] == [
        "Recorded prompts: fr has none. Those calls hear the en ones instead; make them with "
        "`uv run scripts/record_prompts.py --language CODE`"
    ]
    english_fallback = read_prompt(prompts / "fallback.wav")
    assert loaded.audio(Prompt.FALLBACK, "es") == read_prompt(prompts / "es" / "fallback.wav")
    assert loaded.audio(Prompt.FALLBACK, "es") != english_fallback
    assert loaded.audio(Prompt.FALLBACK, "fr") == english_fallback
    # The hold tone has no words: every language plays the one there is.
    assert loaded.audio(Prompt.HOLD_TONE, "es") == read_prompt(prompts / "hold_tone.wav")


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (
            ["--language", "de"],
            {},
            2,
            "--language de: the agent file (agent.toml) does not declare it (declared: en, es, "
            "fr): add a [languages.de] table",
        ),
        (
            ["--language", "es"],
            {"CARTESIA_API_KEY": ""},
            2,
            "the prompts are recorded with the Cartesia voice: set CARTESIA_API_KEY",
        ),
        (
            ["--language", "es"],
            {"CARTESIA_API_KEY": "sk_car_wrong"},
            1,
            "Cartesia refused the connection: HTTP 401 (Invalid API key)",
        ),
    ],
)
async def test_record_prompts_errors_are_one_line_and_write_nothing(
    cartesia, operator_env, monkeypatch, args, env, code, message
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = await call_main(main, *args, "--out", str(operator_env / "out"))
    assert (result.code, result.out) == (code, "")
    assert result.err.splitlines() == [f"record_prompts.py: error: {message}"]
    assert not (operator_env / "out").exists()
