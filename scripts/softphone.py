"""Serve the softphone: a page that calls the agent over a Twilio Media Stream from your microphone.

uv run scripts/softphone.py                 # the local bot at ws://localhost:7860/ws
uv run scripts/softphone.py --cloud --open  # the Pipecat Cloud agent of pcc-deploy.toml
"""

import argparse
import asyncio
import contextlib
import os
import sys
import webbrowser
from pathlib import Path

from dotenv import load_dotenv

from operator_tools.softphone.server import (
    DEFAULT_BOT_URL,
    create_app,
    listen,
    page_url,
    phone_settings,
    serve,
)
from operator_tools.twiml import (
    REGIONS,
    TwimlError,
    check_region,
    cloud_target,
    deploy_config_path,
    parse_parameter_options,
    read_deploy_config,
)

PROG = "softphone.py"
DEFAULT_PORT = 7870


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """One line instead of argparse's usage block: the problem, then where to look."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve a page that calls the bot the way Twilio does, from your microphone. "
        "Pipecat Cloud defaults come from pcc-deploy.toml (agent_name, region) and PIPECAT_ORG; "
        "STREAM_SECRET and TWILIO_ACCOUNT_SID from .env.",
    )
    parser.add_argument("--url", default=DEFAULT_BOT_URL, help="the local bot's stream URL")
    parser.add_argument(
        "--cloud", action="store_true", help="start on Pipecat Cloud instead of the local bot"
    )
    parser.add_argument("--region", help=f"Pipecat Cloud region: {', '.join(REGIONS)}")
    parser.add_argument("--agent", help="agent name (default: agent_name in pcc-deploy.toml)")
    parser.add_argument(
        "--org", help="organization (default: PIPECAT_ORG, then the pipecat cloud CLI login)"
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
        help="an extra customParameter for the bot (repeatable; editable on the page)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the page's port")
    parser.add_argument("--open", action="store_true", help="open the page in your browser")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # STREAM_SECRET, TWILIO_ACCOUNT_SID and PIPECAT_ORG usually live there.
    cloud = args.cloud or any((args.region, args.agent, args.org))
    config_path = deploy_config_path(args.config, os.environ)
    try:
        deploy = read_deploy_config(config_path, required=args.config is not None)
        if args.region:
            check_region(args.region)
        if cloud:  # Say now what is missing, not only on the page.
            cloud_target(
                region=args.region,
                agent=args.agent,
                org=args.org,
                deploy=deploy,
                env=os.environ,
                config_path=config_path,
            )
        extra = parse_parameter_options(args.param)
    except TwimlError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    settings = phone_settings(
        local_url=args.url,
        cloud=cloud,
        region=args.region,
        agent=args.agent,
        deploy=deploy,
        extra=extra,
        env=os.environ | ({"PIPECAT_ORG": args.org} if args.org else {}),
    )
    try:
        sock = listen(args.port)
    except OSError as error:
        print(f"{PROG}: error: port {args.port} is busy or not allowed: {error}", file=sys.stderr)
        return 1
    url = page_url(sock)
    print(f"Softphone at {url} (Ctrl-C stops it)", flush=True)
    if args.open:
        webbrowser.open(url)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        asyncio.run(serve(create_app(settings, deploy=deploy, config_path=config_path), sock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
