"""softphone.py: serve the page that calls the agent from your microphone, as Twilio would."""

import argparse
import asyncio
import contextlib
import os
import sys
import webbrowser

from dotenv import load_dotenv

from operator_tools.cli import (
    EXIT_USAGE,
    OneLineErrorParser,
    add_agent_options,
    print_errors,
    read_deploy,
)
from operator_tools.softphone.server import (
    DEFAULT_BOT_URL,
    create_app,
    listen,
    page_url,
    phone_settings,
    serve,
)
from operator_tools.twiml import TwimlError, check_region, cloud_target, parse_parameter_options

PROG = "softphone.py"
DEFAULT_PORT = 7870


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Serve a page that calls the bot the way Twilio does, from your microphone. "
        "Pipecat Cloud defaults come from pcc-deploy.toml (agent_name, region) and PIPECAT_ORG; "
        "STREAM_SECRET and TWILIO_ACCOUNT_SID from .env.",
    )
    add_agent_options(parser)
    # Here --url is the page's local bot (any ws:// or wss:// stream), set by default.
    parser.set_defaults(url=DEFAULT_BOT_URL)
    parser.add_argument(
        "--cloud", action="store_true", help="start on Pipecat Cloud instead of the local bot"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the page's port")
    parser.add_argument("--open", action="store_true", help="open the page in your browser")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # STREAM_SECRET, TWILIO_ACCOUNT_SID and PIPECAT_ORG usually live there.
    cloud = args.cloud or any((args.region, args.agent, args.org))
    try:
        deploy = read_deploy(args, os.environ)
        if args.region:
            check_region(args.region)
        missing: list[str] = []
        if cloud:  # Say now what is missing, not only on the page.
            cloud_target(
                region=args.region,
                agent=args.agent,
                org=args.org,
                deploy=deploy,
                env=os.environ,
                missing=missing,
            )
        extra = parse_parameter_options(args.param, language=args.language)
    except TwimlError as error:
        print_errors(PROG, [str(error)])
        return EXIT_USAGE
    if missing:
        print_errors(PROG, missing)
        return EXIT_USAGE
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
        print_errors(PROG, [f"port {args.port} is busy or not allowed: {error}"])
        return 1  # Not a usage mistake: nothing can serve the page here.
    url = page_url(sock)
    print(f"Softphone at {url} (Ctrl-C stops it)", flush=True)
    if args.open and not webbrowser.open(url):
        # No browser to run (a server, an SSH session without a display): say so, or the
        # user waits for a window that never comes.
        print(
            f"{PROG}: could not open a browser here (no display?): open {url} in yours",
            file=sys.stderr,
            flush=True,
        )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops.
        asyncio.run(serve(create_app(settings, deploy=deploy), sock))
    return 0
