"""Deployment files: what `pipecat cloud deploy` and the Docker build will read."""

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from bot_runtime.call.recorded_prompts import PROMPTS_DIR, Prompt

REPO = Path(__file__).resolve().parents[1]


def test_pcc_deploy_toml_loads_with_pipecatcloud_loader():
    # The loader reads its path from the environment at import, so load it in a fresh process.
    code = (
        "from pipecatcloud._utils.deploy_utils import load_deploy_config_file\n"
        "c = load_deploy_config_file()\n"
        "print(c.agent_name, c.secret_set, c.region, c.agent_profile, c.scaling.min_agents,"
        " c.krisp_viva.audio_filter)\n"
    )
    env = {**os.environ, "PIPECAT_DEPLOY_CONFIG_PATH": str(REPO / "pcc-deploy.toml")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    agent, secret_set, region, profile, min_agents, krisp = result.stdout.split()
    assert agent == "twilio-voice-agent"
    assert secret_set == "twilio-voice-agent-secrets"
    assert region == "us-west"
    assert profile == "agent-1x"
    assert min_agents == "1"
    assert krisp == "tel"  # Krisp VIVA's telephony voice isolation on the caller's audio


def _local_modules_imported_by(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if (REPO / f"{n}.py").exists() or (REPO / n).is_dir()}


def _copied_into_image() -> set[str]:
    """The destinations of the Dockerfile's COPY lines, e.g. {"bot.py", "bot_runtime"}."""
    lines = (REPO / "Dockerfile").read_text().splitlines()
    return {line.split()[-1].rstrip("/") for line in lines if line.startswith("COPY ")}


def test_dockerfile_copies_every_local_module_bot_imports():
    copied = {path.removesuffix(".py") for path in _copied_into_image()}
    local_modules = _local_modules_imported_by(REPO / "bot.py")
    assert "bot_runtime" in local_modules
    assert local_modules <= copied, f"not copied: {local_modules - copied}"
    assert "bot" in copied


def test_dockerfile_copies_the_recorded_prompts():
    # The bot reads its prompts from beside its package at start-up; the image must have them.
    assert PROMPTS_DIR.parent == REPO
    assert PROMPTS_DIR.name in _copied_into_image()
    assert all((PROMPTS_DIR / f"{prompt.value}.wav").is_file() for prompt in Prompt)


def test_dockerfile_installs_from_the_lockfile_without_dev_or_local_groups():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("FROM dailyco/pipecat-base:")
    (sync,) = [line.split() for line in dockerfile.splitlines() if "uv sync" in line]
    assert "--locked" in sync and "--no-install-project" in sync
    # `uv sync` installs the default groups, dev and local; the image must get neither.
    uv_settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]
    assert set(uv_settings["default-groups"]) == {"dev", "local"}
    assert "--no-default-groups" in sync
    assert not {"--group", "--all-groups", "--dev", "--only-group"} & set(sync)
    assert (REPO / "uv.lock").exists()


def test_the_image_gets_the_runtime_and_nothing_for_other_audiences():
    # The operator's tools and the test kit are not for the bot: they stay out of the image.
    assert _copied_into_image() == {
        "bot.py",
        "bot_runtime",
        "prompts",
        "agent.toml",
        "agent_tools.py",
    }


def test_the_runtime_imports_nothing_from_the_operator_tools_or_the_test_kit():
    runtime = [REPO / "bot.py", REPO / "agent_tools.py", *(REPO / "bot_runtime").rglob("*.py")]
    for path in runtime:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & {"operator_tools", "testkit", "tests", "scripts", "benchmarks"}, path
