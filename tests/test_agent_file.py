"""The agent file: read and checked at start-up, every problem named, the environment winning."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot_runtime.config.settings import DEFAULT_GREETING, BotSettings, ConfigError
from bot_runtime.startup import NO_LOCAL_TOOLS, describe
from testkit.bot_server import REPO, free_port

EXAMPLE_AGENT = REPO / "examples" / "order_desk" / "agent.toml"
SERVICE_KEYS = {"OPENAI_API_KEY": "sk", "DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca"}


def test_agent_file_problems_stop_the_bot_at_start_up_one_line_each(tmp_path):
    (tmp_path / "agent.toml").write_text(
        """
greting = "Hi"
system_prompt = 42

[[tools]]
name = "end_call"
description = "Mine now."
url = "https://api.example.com/end"

[[tools]]
name = "lookup"
description = "Look up."
url = "https://api.example.com/a"

[[tools]]
name = "lookup"
description = "Look up again."
url = "https://api.example.com/b"

[[tools]]
name = "notify"
description = "Tell someone."
url = "${MISSING_URL}/notify"
headers = { Authorization = "Bearer ${MISSING_TOKEN}" }

[tools.parameters.kind]
type = "text"
"""
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHON_DOTENV_DISABLED": "1",
        "AGENT_FILE": str(tmp_path / "agent.toml"),
    }
    result = subprocess.run(
        [sys.executable, "bot.py", "-t", "twilio", "--port", str(free_port())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    start = lines.index("Configuration error:")
    # Each problem once, naming the file as AGENT_FILE gave it; an unset ${NAME} in the URL
    # is not said again as a URL that does not start with http://.
    shown = env["AGENT_FILE"]
    assert lines[start + 1 :] == [
        f"{shown}: unknown key 'greting' (known: system_prompt, greeting, goodbye, "
        "silence_prompt, voicemail_message, tools, analysis, language, analysis_language, "
        "detect_language, languages, numbers)",
        f"{shown}: 'system_prompt' must be a non-empty string",
        f"{shown}: tools[0] (end_call): 'end_call' is the bot's own call-control tool: "
        "choose another",
        f"{shown}: tools[2]: tool name 'lookup' is used twice",
        f"{shown}: tools[3] (notify): url uses ${{MISSING_URL}}, which is not set in the "
        "environment",
        f"{shown}: tools[3] (notify): header Authorization uses ${{MISSING_TOKEN}}, which is "
        "not set in the environment",
        f"{shown}: tools[3] (notify) parameter kind: 'type' must be one of string, number, "
        "integer, boolean, or give 'enum'",
    ]


def test_without_an_agent_file_the_defaults_apply_and_a_named_one_must_exist(tmp_path):
    assert BotSettings.from_env(SERVICE_KEYS).greeting == DEFAULT_GREETING
    with pytest.raises(ConfigError, match="AGENT_FILE: .* does not exist"):
        BotSettings.from_env(SERVICE_KEYS | {"AGENT_FILE": str(tmp_path / "nowhere.toml")})


def test_environment_variables_win_over_the_agent_file(tmp_path):
    from bot_runtime.config.settings import BotSettings

    (tmp_path / "agent.toml").write_text('greeting = "From the file"\ngoodbye = "Bye from file"')
    settings = BotSettings.from_env(
        SERVICE_KEYS
        | {"AGENT_FILE": str(tmp_path / "agent.toml"), "GREETING": "From the environment"}
    )
    assert settings.greeting == "From the environment"
    assert settings.goodbye == "Bye from file"


def test_the_example_agent_file_loads_with_both_kinds_of_tool():
    settings = BotSettings.from_env(
        SERVICE_KEYS
        | {
            "AGENT_FILE": str(EXAMPLE_AGENT),
            "ORDERS_API_URL": "https://orders.example.com",
            "ORDERS_TOKEN": "t0ken-for-the-example",
        }
    )
    (declared,) = settings.agent.tools
    assert declared.url == "https://orders.example.com/orders/status"
    assert "t0ken-for-the-example" in declared.secrets
    (python_tool,) = settings.agent.python_tools
    assert python_tool.name == "check_opening_hours"
    assert python_tool.properties["day"]["type"] == "string"
    assert Path(settings.agent.path) == EXAMPLE_AGENT


def test_the_start_up_line_names_the_file_as_given_and_says_the_local_llm_cannot_use_tools():
    given = "examples/order_desk/agent.toml"
    orders = {"ORDERS_API_URL": "https://orders.example.com", "ORDERS_TOKEN": "t0ken-example"}
    local = describe(BotSettings.from_env({"AGENT_FILE": given} | orders))
    assert f"agent file {given}, tools lookup_order, check_opening_hours; " in local
    assert NO_LOCAL_TOOLS in local
    cloud = describe(BotSettings.from_env(SERVICE_KEYS | {"AGENT_FILE": given} | orders))
    assert NO_LOCAL_TOOLS not in cloud
