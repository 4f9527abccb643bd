"""render_twiml.py: the TwiML Bin for every region, its defaults, and one-line errors."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from operator_tools import render_twiml
from operator_tools.twiml import REGIONS
from testkit.operator_scripts import REPO, stream_of

pytest_plugins = ["testkit.operator_fixtures"]
pytestmark = pytest.mark.usefixtures("operator_env")

SCRIPT = REPO / "scripts" / "render_twiml.py"
STREAM_URLS = {
    "us-west": "wss://api.pipecat.daily.co/ws/twilio",
    "us-east": "wss://us-east.api.pipecat.daily.co/ws/twilio",
    "eu-central": "wss://eu-central.api.pipecat.daily.co/ws/twilio",
    "ap-south": "wss://ap-south.api.pipecat.daily.co/ws/twilio",
}


def render(capsys, *argv: str) -> tuple[int, str, str]:
    code = render_twiml.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("region", REGIONS)
def test_every_region_renders_its_stream_url_and_exactly_the_expected_parameters(capsys, region):
    code, out, err = render(capsys, "--region", region, "--agent", "my-agent", "--org", "acme")
    assert (code, err) == (0, "")
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    url, parameters = stream_of(out)
    assert url == STREAM_URLS[region]
    assert parameters == {
        "_pipecatCloudServiceHost": "my-agent.acme",
        "from_number": "{{From}}",
        "to_number": "{{To}}",
    }


def test_defaults_come_from_pcc_deploy_toml_and_pipecat_org(capsys, tmp_path, monkeypatch):
    (tmp_path / "pcc-deploy.toml").write_text(
        'agent_name = "support-bot"\nregion = "eu-central"\nsecret_set = "s"\n'
        'agent_profile = "agent-1x"\n[scaling]\nmin_agents = 1\n'
    )
    monkeypatch.setenv("PIPECAT_ORG", "acme")
    code, out, _ = render(capsys)
    assert code == 0
    url, parameters = stream_of(out)
    assert url == STREAM_URLS["eu-central"]
    assert parameters["_pipecatCloudServiceHost"] == "support-bot.acme"


def test_options_override_the_deploy_config_given_with_config(capsys, tmp_path, monkeypatch):
    config = tmp_path / "elsewhere" / "deploy.toml"
    config.parent.mkdir()
    config.write_text('agent_name = "support-bot"\nregion = "eu-central"\n')
    monkeypatch.setenv("PIPECAT_ORG", "acme")
    code, out, _ = render(capsys, "--config", str(config), "--region", "ap-south", "--org", "beta")
    assert code == 0
    url, parameters = stream_of(out)
    assert url == STREAM_URLS["ap-south"]
    assert parameters["_pipecatCloudServiceHost"] == "support-bot.beta"


def test_organization_falls_back_to_the_pipecat_cloud_cli_login(capsys, tmp_path):
    (tmp_path / "no-login.toml").write_text('token = "secret-cli-token"\norg = "logged-in-org"\n')
    code, out, _ = render(capsys, "--agent", "bot")
    assert code == 0
    assert stream_of(out)[1]["_pipecatCloudServiceHost"] == "bot.logged-in-org"
    assert "secret-cli-token" not in out


def test_stream_secret_and_extra_parameters_are_added_and_escaped(capsys, monkeypatch):
    monkeypatch.setenv("STREAM_SECRET", "s3cret")
    tricky = 'Tom & "Jerry" <ltd>'
    code, out, _ = render(
        capsys,
        "--agent",
        "bot",
        "--org",
        "acme",
        "--param",
        "line=sales",
        "--param",
        f"company={tricky}",
    )
    assert code == 0
    assert "&amp;" in out and "&quot;" in out and "&lt;ltd&gt;" in out
    assert stream_of(out)[1] == {
        "_pipecatCloudServiceHost": "bot.acme",
        "from_number": "{{From}}",
        "to_number": "{{To}}",
        "stream_secret": "s3cret",
        "line": "sales",
        "company": tricky,
    }


def test_new_secret_prints_a_fresh_stream_secret_each_time(capsys):
    secrets = set()
    for _ in range(2):
        code, out, err = render(capsys, "--new-secret")
        name, _, secret = out.strip().partition("=")
        assert (code, name) == (0, "STREAM_SECRET") and "render the TwiML Bin again" in err
        assert len(secret) >= 40 and secret.replace("-", "").replace("_", "").isalnum()
        secrets.add(secret)
    assert len(secrets) == 2


def test_url_streams_to_your_own_runner_without_a_service_host(capsys):
    code, out, _ = render(capsys, "--url", "wss://abc123.ngrok.app/ws")
    assert code == 0
    url, parameters = stream_of(out)
    assert url == "wss://abc123.ngrok.app/ws"
    assert parameters == {"from_number": "{{From}}", "to_number": "{{To}}"}


def test_the_whisper_bin_says_the_summary_the_bot_puts_in_its_url(capsys):
    code, out, _ = render(capsys, "--whisper")
    assert code == 0
    response = ET.fromstring(out.split("\n", 1)[1])
    assert [(child.tag, child.text) for child in response] == [("Say", "{{Summary}}")]


def test_all_regions_writes_one_file_per_region(capsys, tmp_path):
    code, out, _ = render(
        capsys, "--all-regions", "--agent", "bot", "--org", "acme", "--out", str(tmp_path / "bins")
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "bins").iterdir()) == sorted(
        f"{region}.xml" for region in REGIONS
    )
    for region in REGIONS:
        url, _ = stream_of((tmp_path / "bins" / f"{region}.xml").read_text())
        assert url == STREAM_URLS[region]
    assert out.count("wrote ") == len(REGIONS)


def test_checked_in_templates_are_what_the_script_renders(capsys, tmp_path):
    """twiml/templates/ must never go stale: regenerate it with the command in its README."""
    code, _, _ = render(
        capsys,
        "--all-regions",
        "--agent",
        "YOUR_AGENT",
        "--org",
        "YOUR_ORG",
        "--out",
        str(tmp_path / "templates"),
    )
    assert code == 0
    for region in REGIONS:
        rendered = (tmp_path / "templates" / f"{region}.xml").read_text()
        assert (REPO / "twiml" / "templates" / f"{region}.xml").read_text() == rendered


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--region", "mars"], "unknown Pipecat Cloud region 'mars' (--region): choose us-west"),
        (["--agent", "", "--org", "a"], "no agent name: pass --agent NAME"),
        (["--agent", "bot"], "no organization: pass --org ORG or set PIPECAT_ORG"),
        (["--param", "customer_id"], "--param customer_id: write it as NAME=VALUE"),
        (["--param", "_pipecatCloudServiceHost=x.y"], "is set by the script itself"),
        (["--param", "_secret=1"], "names starting with '_' are reserved for Pipecat Cloud"),
        (["--all-regions"], "--all-regions writes one file per region: add --out DIR"),
        (["--url", "https://host/ws"], "is not a websocket URL Twilio accepts"),
        (["--url", "wss://host/ws", "--all-regions"], "--url streams to your own runner"),
    ],
)
def test_each_mistake_is_one_line_naming_it_with_exit_code_2(capsys, argv, expected):
    args = argv if "--agent" in argv or "--url" in argv else ["--agent", "bot", "--org", "a", *argv]
    code, out, err = render(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("render_twiml.py: error: ")
    assert expected in err


def test_an_agent_name_and_organization_both_missing_are_named_at_once(capsys):
    code, out, err = render(capsys)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("render_twiml.py: error: no agent name: pass --agent NAME")
    assert lines[1].startswith("render_twiml.py: error: no organization: pass --org ORG")


def test_a_broken_deploy_config_is_named_instead_of_ignored(capsys, tmp_path):
    (tmp_path / "pcc-deploy.toml").write_text('agent_name = "bot\n')
    code, _, err = render(capsys, "--org", "acme")
    assert code == 2
    assert "cannot read pcc-deploy.toml" in err


def test_as_a_subprocess_an_unknown_region_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--region", "eu-west", "--agent", "bot", "--org", "a"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "render_twiml.py: error: unknown Pipecat Cloud region 'eu-west' (--region): "
        "choose us-west, us-east, eu-central, ap-south\n"
    )


def test_as_a_subprocess_argparse_errors_are_one_line_too(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--region"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
