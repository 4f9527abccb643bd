"""Fixtures for tests of the operator's scripts: a clean project folder, the fake Twilio.

A pytest plugin: a test module names it in ``pytest_plugins = ["testkit.operator_fixtures"]``
and asks for the fixtures by name; pytest loads it, nothing imports it.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from testkit.fakes.twilio_rest import ACCOUNT_SID, API_KEY, API_SECRET, AUTH_TOKEN, FakeTwilio
from testkit.operator_scripts import FROM


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty project folder as cwd; no deploy config, organization, login, secret or .env."""
    for name in list(os.environ):
        if name.startswith(("PIPECAT_", "TWILIO_")) or name == "STREAM_SECRET":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHON_DOTENV_DISABLED", "1")
    monkeypatch.setenv("PIPECAT_CONFIG_PATH", str(tmp_path / "no-login.toml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def deployed_project(operator_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployed project: pcc-deploy.toml (support-bot in eu-central) and PIPECAT_ORG=acme."""
    monkeypatch.setenv("PIPECAT_ORG", "acme")
    (operator_env / "pcc-deploy.toml").write_text(
        'agent_name = "support-bot"\nregion = "eu-central"\n'
    )
    return operator_env


@pytest_asyncio.fixture
async def fake_twilio(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTwilio]:
    """The fake Twilio, and the environment of a user whose keys and caller ID are set for it."""
    async with FakeTwilio(api_key=API_KEY, api_secret=API_SECRET) as fake:
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        monkeypatch.setenv("TWILIO_API_BASE_URL", fake.base_url)
        monkeypatch.setenv("TWILIO_PHONE_NUMBER", FROM)
        yield fake
