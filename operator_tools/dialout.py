"""dialout.py: call a number, or every row of a CSV file, and connect the call to the agent."""

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv

from bot_runtime.config.environment import ConfigError
from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.phone_numbers import PhoneNumberError, e164
from operator_tools.campaign import Campaign
from operator_tools.cli import (
    EXIT_INTERRUPTED,
    EXIT_TWILIO_ERROR,
    EXIT_USAGE,
    OneLineErrorParser,
    UsageError,
    add_agent_options,
    agent_target,
    print_errors,
    read_deploy,
)
from operator_tools.outbound import OutboundCalls
from operator_tools.results_file import ResultsFile
from operator_tools.single_call import place_call
from operator_tools.twilio_calls import TwilioFailure, calls_api, describe_request
from operator_tools.twiml import TwimlError, parse_parameter_options, stream_twiml

PROG = "dialout.py"
# What a dry run shows for a caller ID nobody has set yet.
CALLER_ID_PLACEHOLDER = "{TWILIO_PHONE_NUMBER}"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Call a number, or every row of a CSV file, and connect the call to the "
        "agent with inline TwiML. Prints the Call SID. Numbers are written + and the country "
        "code, then the number; spaces, dashes, dots and brackets are fine, and 00 may stand "
        "for the +.",
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--to", metavar="+NUMBER", help="the number to call, e.g. +14155550123")
    who.add_argument("--to-file", type=Path, metavar="CSV", help="a campaign: a 'to' column")
    parser.add_argument(
        "--from",
        dest="from_number",
        metavar="+NUMBER",
        help="caller ID, a Twilio number you own (default: TWILIO_PHONE_NUMBER)",
    )
    add_agent_options(parser)
    parser.add_argument("--wait", action="store_true", help="follow the call until it ends")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the request, call nobody (placeholders stand for what is not set)",
    )
    parser.add_argument(
        "--machine-detection",
        action="store_true",
        help="let Twilio detect answering machines (the call's AnsweredBy)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        metavar="SECONDS",
        help="how long to let it ring, 5-600 (Twilio's default: 60)",
    )
    campaign = parser.add_argument_group("campaigns (--to-file)")
    campaign.add_argument(
        "--results",
        type=Path,
        metavar="CSV",
        help="results file, appended to (default: results-NAME.csv beside it)",
    )
    campaign.add_argument(
        "--cps",
        type=float,
        default=1.0,
        help="calls started per second at most (default 1, Twilio's default)",
    )
    campaign.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="calls in flight at most (default: max_agents in pcc-deploy.toml, else 1)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.5,
        metavar="SECONDS",
        help="how often to fetch a call's status (default 1.5)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run dialout.py with ``argv``; returns the exit code (see README, "Call out")."""
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # The Twilio keys usually live there.
    try:
        return asyncio.run(_run(args, env=os.environ))
    except (UsageError, TwimlError, PhoneNumberError, ConfigError) as exc:
        print_errors(PROG, str(exc).splitlines())
        return EXIT_USAGE
    except TwilioFailure as exc:
        print_errors(PROG, [str(exc)])
        return EXIT_TWILIO_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # A bug: still one line, as promised, naming what broke.
        print_errors(PROG, [f"unexpected {type(exc).__name__}: {exc}"])
        return EXIT_TWILIO_ERROR


async def _run(args: argparse.Namespace, *, env: Mapping[str, str]) -> int:
    """Check everything, then make the calls, or with --dry-run show them.

    Wrong values stop at the first; what is merely not set is collected in ``missing``
    so that one run names all of it (a dry run shows placeholders instead).
    """
    _check_options(args)
    settings = TwilioSettings.from_env(env)
    to = e164(args.to, what="--to") if args.to else None
    missing: list[str] = []
    deploy = read_deploy(args, env)
    outbound = OutboundCalls(
        target=agent_target(args, env=env, deploy=deploy, region=args.region, missing=missing),
        from_number=_caller_id(args, settings, missing=missing),
        stream_secret=env.get("STREAM_SECRET", "").strip() or None,
        extra=parse_parameter_options(args.param, language=args.language),
        machine_detection=args.machine_detection,
        timeout=args.timeout,
    )
    if settings.missing_credentials:
        missing.append(
            f"missing {' and '.join(settings.missing_credentials)}: "
            "set them in the environment or .env"
        )
    campaign = results = None
    try:
        if args.to_file:
            results = ResultsFile(
                args.results or args.to_file.with_name(f"results-{args.to_file.stem}.csv")
            )
            if not args.dry_run:
                await results.lock()  # Before reading it: another run's calls must all be in it.
            campaign = Campaign.load(args.to_file, results=results, outbound=outbound)
        if args.dry_run:
            _print_dry_run(outbound, settings, to=to, campaign=campaign, missing=missing)
            return 0
        if missing:
            raise UsageError("\n".join(missing))
        async with calls_api(settings) as api:
            if campaign:
                return await campaign.run(
                    api,
                    cps=args.cps,
                    concurrency=args.concurrency or deploy.max_agents or 1,
                    poll_interval=args.poll_interval,
                )
            return await place_call(
                api, outbound.fields(to=to), wait=args.wait, poll_interval=args.poll_interval
            )
    finally:
        if results is not None:
            results.close()


def _check_options(args: argparse.Namespace) -> None:
    if args.timeout is not None and not 5 <= args.timeout <= 600:
        raise UsageError(f"--timeout {args.timeout}: Twilio rings for 5 to 600 seconds")
    if args.cps <= 0 or args.poll_interval <= 0:
        raise UsageError("--cps and --poll-interval must be more than 0")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.to and (args.results or args.concurrency):
        raise UsageError("--results and --concurrency are for campaigns (--to-file)")


def _caller_id(args: argparse.Namespace, settings: TwilioSettings, *, missing: list[str]) -> str:
    """--from, else TWILIO_PHONE_NUMBER; when neither is set, noted in ``missing``."""
    if args.from_number:
        return e164(args.from_number, what="--from")
    if settings.phone_number:
        return settings.phone_number
    missing.append(
        "no caller ID: pass --from +NUMBER (a Twilio number you own) or set TWILIO_PHONE_NUMBER"
    )
    return CALLER_ID_PLACEHOLDER


def _print_dry_run(
    outbound: OutboundCalls,
    settings: TwilioSettings,
    *,
    to: str | None,
    campaign: Campaign | None,
    missing: list[str],
) -> None:
    """What a real run would send on stdout, the stream secret masked; on stderr, skipped rows
    and what is missing."""
    shown = outbound.masked()
    if campaign is None:
        outbound.fields(to=to)  # Twilio's limit applies to the TwiML with the real secret.
        print(stream_twiml(shown.target.url, shown.parameters(to), pretty=True))
        print("\n".join(describe_request(settings, shown.fields(to=to))))
    else:
        for note in campaign.notes:
            print(note, file=sys.stderr)
        for row, _ in campaign.calls:
            print(f"# row {row.number}")
            fields = shown.fields(to=row.to, row_parameters=row.parameters)
            print("\n".join(describe_request(settings, fields)))
        print(f"{len(campaign.calls)} calls would be made")
    if missing:
        print(
            "Not set yet, so a real run would stop (the {braces} above stand for them):",
            *(f"  {problem}" for problem in missing),
            sep="\n",
            file=sys.stderr,
        )
