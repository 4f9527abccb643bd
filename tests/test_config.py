"""Configuration: every problem named at start-up, Twilio settings resolved the way Twilio does."""

import pytest

from voice_agent.config import BotSettings, ConfigError, TwilioSettings

ACCOUNT_SID = "AC" + "1" * 32
SERVICE_KEYS = {"OPENAI_API_KEY": "sk-o", "DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca"}


def test_missing_service_keys_are_all_named_at_once():
    with pytest.raises(ConfigError) as error:
        BotSettings.from_env({})
    message = str(error.value)
    assert "OPENAI_API_KEY" in message
    assert "DEEPGRAM_API_KEY" in message
    assert "CARTESIA_API_KEY" in message


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
    assert any("TWILIO_PHONE_NUMBER must be E.164" in line for line in lines)


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
    assert "TRANSFER_NUMBER must be E.164" in str(error.value)
    assert "RECORD_CALLS must be true or false" in str(error.value)
