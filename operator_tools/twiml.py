"""The TwiML that connects a Twilio call to the agent, and where that agent lives."""

import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from twilio.twiml.voice_response import VoiceResponse

from bot_runtime.call.facts import (
    MAX_EXTRA_FACTS,
    MAX_FACT_VALUE_CHARS,
    NUMBER_PARAMETERS,
    ROUTING_PARAMETERS,
)
from bot_runtime.config.languages import LANGUAGE_PARAMETER, canonical
from bot_runtime.phone_line import STREAM_SECRET_PARAMETER

# Pipecat Cloud regions, each with its own Twilio websocket endpoint. The agent must be
# deployed in the region its TwiML names; pcc-deploy.toml uses the same region names.
REGIONS = ("us-west", "us-east", "eu-central", "ap-south")
DEFAULT_REGION = "us-west"

# Twilio drops query strings from Stream URLs, so Pipecat Cloud learns which agent to
# start from this Parameter (value AGENT.ORG) in the stream's `start` message.
SERVICE_HOST_PARAMETER = "_pipecatCloudServiceHost"
# Parameters the scripts set themselves; the bot reads them with these meanings.
RESERVED_PARAMETERS = ROUTING_PARAMETERS | NUMBER_PARAMETERS
# Extra parameters land in every LLM request of the call, where the bot keeps only this many,
# this long; inline TwiML is limited to 4000 characters: keep them small.
MAX_EXTRA_PARAMETERS = MAX_EXTRA_FACTS
MAX_PARAMETER_VALUE_CHARS = MAX_FACT_VALUE_CHARS
MAX_INLINE_TWIML_CHARS = 4000
# What a dry run shows for an agent name or organization nobody has set yet.
AGENT_PLACEHOLDER = "{AGENT}"
ORG_PLACEHOLDER = "{PIPECAT_ORG}"

_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class TwimlError(ValueError):
    """A user-supplied value cannot go into the TwiML; the message says what to change."""


@dataclass(frozen=True)
class DeployConfig:
    """What pcc-deploy.toml (at ``path``) says about the deployed agent; None without the file."""

    path: Path
    agent_name: str | None = None
    region: str | None = None
    max_agents: int | None = None


@dataclass(frozen=True)
class StreamTarget:
    """Where Twilio's media stream goes: a Pipecat Cloud agent, or your own runner."""

    url: str
    service_host: str | None = None  # AGENT.ORG on Pipecat Cloud; None for your own runner.
    region: str | None = None

    def describe(self) -> str:
        if self.service_host:
            return f"Pipecat Cloud agent {self.service_host} in {self.region}"
        return f"your runner at {self.url}"


def stream_url(region: str) -> str:
    """The Pipecat Cloud websocket Twilio connects to in ``region``."""
    check_region(region)
    host = "api.pipecat.daily.co" if region == DEFAULT_REGION else f"{region}.api.pipecat.daily.co"
    return f"wss://{host}/ws/twilio"


def check_region(region: str, *, source: str = "--region") -> None:
    if region not in REGIONS:
        choices = ", ".join(REGIONS)
        raise TwimlError(f"unknown Pipecat Cloud region {region!r} ({source}): choose {choices}")


def deploy_config_path(option: Path | None, env: Mapping[str, str]) -> Path:
    """--config, else PIPECAT_DEPLOY_CONFIG_PATH (as the pipecat CLI reads it), else the cwd's."""
    return option or Path(env.get("PIPECAT_DEPLOY_CONFIG_PATH") or "pcc-deploy.toml")


def read_deploy_config(path: Path, *, required: bool = False) -> DeployConfig:
    """Read the agent name, region and max_agents from pcc-deploy.toml.

    pipecatcloud's own loader reads a path fixed when it is imported and returns None
    for a file with a TOML error, which would hide a typo behind "no agent name";
    tomllib tells the user what is wrong. A missing file is fine (the options must
    then say everything) unless ``required``: the user named it with --config.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise TwimlError(f"{path} does not exist") from None
        return DeployConfig(path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TwimlError(f"cannot read {path}: {exc}") from None
    scaling = data.get("scaling", {})
    max_agents = scaling.get("max_agents") if isinstance(scaling, dict) else None
    return DeployConfig(
        path,
        agent_name=_text_or_none(data.get("agent_name")),
        region=_text_or_none(data.get("region")),
        max_agents=max_agents if isinstance(max_agents, int) and max_agents > 0 else None,
    )


def default_organization(env: Mapping[str, str]) -> str | None:
    """The Pipecat Cloud organization when --org is not given.

    PIPECAT_ORG first (the variable the pipecat cloud CLI itself honours), then the
    organization `pipecat cloud auth login` / `organizations select` stored in the
    CLI's config file, so a user who has deployed does not have to type it.
    """
    if env.get("PIPECAT_ORG", "").strip():
        return env["PIPECAT_ORG"].strip()
    config_path = Path(
        env.get("PIPECAT_CONFIG_PATH") or Path.home() / ".config/pipecatcloud/pipecatcloud.toml"
    )
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # Not logged in, or a file the CLI itself will complain about.
    return _text_or_none(data.get("org"))


def cloud_target(
    *,
    region: str | None,
    agent: str | None,
    org: str | None,
    deploy: DeployConfig,
    env: Mapping[str, str],
    missing: list[str],
) -> StreamTarget:
    """The Pipecat Cloud agent to stream to: options first, then pcc-deploy.toml and env.

    An agent name or organization set nowhere is added to ``missing`` (saying how to
    set it) and stands as a placeholder, {AGENT} or {PIPECAT_ORG}, rather than raising:
    a dry run can then show what it would send, and a real run name everything
    missing at once. Values that are set but wrong raise TwimlError.
    """
    if region is None and deploy.region:
        check_region(deploy.region, source=f"region in {deploy.path}")
    region = region or deploy.region or DEFAULT_REGION
    check_region(region)
    agent = agent if agent is not None else deploy.agent_name
    org = org if org is not None else default_organization(env)
    if not agent:
        missing.append(
            f"no agent name: pass --agent NAME (or set agent_name in {deploy.path}, "
            "which `pipecat cloud deploy` uses)"
        )
    else:
        _check_name_part(agent, what="agent name")
    if not org:
        missing.append(
            "no organization: pass --org ORG or set PIPECAT_ORG "
            "(`pipecat cloud organizations list` shows its name)"
        )
    else:
        _check_name_part(org, what="organization")
    service_host = f"{agent or AGENT_PLACEHOLDER}.{org or ORG_PLACEHOLDER}"
    return StreamTarget(url=stream_url(region), service_host=service_host, region=region)


def local_target(url: str) -> StreamTarget:
    """Your own runner behind a tunnel, e.g. ``wss://abc.ngrok.app/ws``."""
    if not re.fullmatch(r"wss://[^/?#\s]+(/[^?#\s]*)?", url):
        raise TwimlError(
            f"{url!r} is not a websocket URL Twilio accepts: use wss://HOST/ws "
            "(secure, and no query string: Twilio drops it)"
        )
    return StreamTarget(url=url)


def check_parameter(name: str, value: str, *, source: str) -> None:
    """Refuse a Parameter the bot would misread, or that would bloat every LLM request."""
    if name in RESERVED_PARAMETERS:
        raise TwimlError(f"{source}: {name!r} is set by the script itself; choose another name")
    if name.startswith("_"):
        raise TwimlError(f"{source}: names starting with '_' are reserved for Pipecat Cloud")
    if not _PARAMETER_NAME.fullmatch(name):
        raise TwimlError(
            f"{source}: parameter name {name!r} must be a letter then up to 63 letters, "
            "digits, '_' or '-'"
        )
    if len(value) > MAX_PARAMETER_VALUE_CHARS:
        raise TwimlError(
            f"{source}: the value of {name!r} is {len(value)} characters; keep it under "
            f"{MAX_PARAMETER_VALUE_CHARS} (pass an id and look the rest up in the bot)"
        )
    if _CONTROL_CHARACTERS.search(value):
        raise TwimlError(f"{source}: the value of {name!r} contains a newline or control character")
    if name == LANGUAGE_PARAMETER and value and canonical(value) is None:
        # The bot would not find it among the agent file's languages and answer in the
        # default one: refused here, before anyone is called.
        raise TwimlError(f"{source}: language {value!r} is not a language code, e.g. es or pt-BR")


def parse_parameter_options(
    options: Iterable[str], *, language: str | None = None
) -> dict[str, str]:
    """Turn ``--param k=v`` options (and ``--language``) into parameters, refusing malformed
    or duplicate ones."""
    parameters: dict[str, str] = {}
    if language is not None:
        check_parameter(LANGUAGE_PARAMETER, language, source=f"--language {language}")
        parameters[LANGUAGE_PARAMETER] = language
    for option in options:
        name, equals, value = option.partition("=")
        source = f"--param {option}"
        if not equals or not name:
            raise TwimlError(f"{source}: write it as NAME=VALUE, e.g. --param customer_id=42")
        check_parameter(name, value, source=source)
        if name in parameters:
            twice = "by --language too" if name == LANGUAGE_PARAMETER else "twice"
            raise TwimlError(f"{source}: {name!r} is given {twice}")
        parameters[name] = value
    check_parameter_count(parameters)
    return parameters


def check_parameter_count(extra: Mapping[str, str]) -> None:
    if len(extra) > MAX_EXTRA_PARAMETERS:
        raise TwimlError(
            f"{len(extra)} extra parameters; at most {MAX_EXTRA_PARAMETERS} reach the bot"
        )


def stream_parameters(
    target: StreamTarget,
    *,
    from_number: str,
    to_number: str,
    stream_secret: str | None,
    extra: Mapping[str, str],
    call_type: str | None = None,
) -> dict[str, str]:
    """All the Parameters of the <Stream>, the ones the bot relies on first."""
    parameters: dict[str, str] = {}
    if target.service_host:
        parameters[SERVICE_HOST_PARAMETER] = target.service_host
    if call_type:
        parameters["call_type"] = call_type
    parameters["from_number"] = from_number
    parameters["to_number"] = to_number
    if stream_secret:
        parameters[STREAM_SECRET_PARAMETER] = stream_secret
    parameters.update(extra)
    return parameters


def whisper_twiml() -> str:
    """The "whisper" Bin: says the transfer's brief to whoever answers a transfer.

    The bot adds ``?Summary=...`` to the Bin's URL (TRANSFER_WHISPER_URL) when it
    transfers a call, and TwiML Bins fill ``{{Summary}}`` from the query string.
    """
    response = VoiceResponse()
    response.say("{{Summary}}")
    return _pretty(response)


def stream_twiml(url: str, parameters: Mapping[str, str], *, pretty: bool = False) -> str:
    """``<Response><Connect><Stream url>`` with one <Parameter> each, escaped by the SDK.

    Nothing follows <Connect>: it lasts until the bot closes the socket, and a verb
    after it would keep a dead call alive. ``pretty`` is for TwiML Bins people read;
    inline TwiML stays compact for Twilio's 4000-character limit.
    """
    response = VoiceResponse()
    stream = response.connect().stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    return _pretty(response) if pretty else response.to_xml()


def _pretty(response: VoiceResponse) -> str:
    """TwiML indented for people to read (TwiML Bins)."""
    element = response.xml()
    ET.indent(element)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, "unicode") + "\n"


def _check_name_part(value: str, *, what: str) -> None:
    if not _NAME_PART.fullmatch(value):
        raise TwimlError(
            f"{what} {value!r} may only hold letters, digits, '-' and '_' "
            "(the service host is AGENT.ORG)"
        )


def _text_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None
