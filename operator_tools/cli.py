"""What the operator's scripts share: exit codes, one-line errors, the options naming the agent."""

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from operator_tools.twiml import (
    REGIONS,
    DeployConfig,
    StreamTarget,
    TwimlError,
    cloud_target,
    deploy_config_path,
    local_target,
    read_deploy_config,
)

EXIT_TWILIO_ERROR = 1  # Twilio refused, could not be reached, or a campaign stopped.
EXIT_USAGE = 2  # Options, numbers, files or credentials need fixing.
EXIT_NOT_CONNECTED = 3  # dialout.py --wait: busy, no answer, failed or canceled.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Something the user must fix before anything is sent; one line per problem, exit code 2."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are one line, like every other error of the scripts."""

    def error(self, message: str) -> None:
        """One line instead of argparse's usage block: the problem, then where to look."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """The options that say which agent the call streams to, and what it is told."""
    parser.add_argument("--region", help=f"Pipecat Cloud region: {', '.join(REGIONS)}")
    parser.add_argument("--agent", help="agent name (default: agent_name in pcc-deploy.toml)")
    parser.add_argument(
        "--org", help="organization (default: PIPECAT_ORG, then the pipecat cloud CLI login)"
    )
    parser.add_argument(
        "--url",
        metavar="wss://HOST/ws",
        help="stream to your own runner behind a tunnel instead of Pipecat Cloud",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="deploy config (default: PIPECAT_DEPLOY_CONFIG_PATH or ./pcc-deploy.toml)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra <Parameter> for the bot (repeatable)",
    )
    parser.add_argument(
        "--language",
        metavar="CODE",
        help="the call's language, one the agent file declares (e.g. es): the `language` "
        "<Parameter> (default: the agent's own language)",
    )


def read_deploy(args: argparse.Namespace, env: Mapping[str, str]) -> DeployConfig:
    """pcc-deploy.toml, or the file --config names (which must then exist)."""
    path = deploy_config_path(args.config, env)
    return read_deploy_config(path, required=args.config is not None)


def agent_target(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str],
    deploy: DeployConfig,
    region: str | None,
    missing: list[str],
) -> StreamTarget:
    """Your runner (--url), or the Pipecat Cloud agent the options, deploy config and env name.

    What is set nowhere goes to ``missing``, as cloud_target() describes.
    """
    if args.url:
        if args.region or args.agent or args.org:
            raise TwimlError("--url streams to your own runner: drop --region/--agent/--org")
        return local_target(args.url)
    return cloud_target(
        region=region, agent=args.agent, org=args.org, deploy=deploy, env=env, missing=missing
    )


def print_errors(prog: str, problems: Iterable[str]) -> None:
    """Each problem as its own ``PROG: error:`` line on stderr."""
    for problem in problems:
        print(f"{prog}: error: {problem}", file=sys.stderr)
