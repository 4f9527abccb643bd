"""render_twiml.py: print or write the TwiML Bin that connects a Twilio number to the agent."""

import argparse
import dataclasses
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv

from operator_tools.cli import (
    EXIT_USAGE,
    OneLineErrorParser,
    UsageError,
    add_agent_options,
    agent_target,
    print_errors,
    read_deploy,
)
from operator_tools.twiml import (
    REGIONS,
    TwimlError,
    parse_parameter_options,
    stream_parameters,
    stream_twiml,
    stream_url,
    whisper_twiml,
)

PROG = "render_twiml.py"
# Twilio fills these in for each call that reaches a TwiML Bin.
BIN_FROM = "{{From}}"
BIN_TO = "{{To}}"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Render the TwiML Bin for a Twilio number. Defaults come from "
        "pcc-deploy.toml (agent_name, region) and PIPECAT_ORG.",
    )
    add_agent_options(parser)
    parser.add_argument("--all-regions", action="store_true", help="one Bin per region (--out)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write REGION.xml files here")
    parser.add_argument(
        "--whisper",
        action="store_true",
        help="the Bin that briefs whoever answers a transfer (its URL: TRANSFER_WHISPER_URL)",
    )
    parser.add_argument(
        "--new-secret",
        action="store_true",
        help="print a fresh STREAM_SECRET (then set it and render the Bin again)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.new_secret:
        # 32 random bytes: far beyond guessing, and URL-safe, so TwiML needs no escaping.
        print(f"STREAM_SECRET={secrets.token_urlsafe(32)}")
        print(
            "Set it in .env and in the agent's Pipecat Cloud secret set, redeploy, then "
            "render the TwiML Bin again: it carries the secret to every call.",
            file=sys.stderr,
        )
        return 0
    load_dotenv(".env")  # STREAM_SECRET and PIPECAT_ORG usually live there.
    if args.whisper:
        print(whisper_twiml(), end="")
        return 0
    try:
        bins = _render(args, env=os.environ)
    except (TwimlError, UsageError) as exc:
        print_errors(PROG, str(exc).splitlines())
        return EXIT_USAGE
    if args.out is None:
        print(next(iter(bins.values())), end="")
        return 0
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, twiml in bins.items():
            path = args.out / f"{name}.xml"
            path.write_text(twiml, encoding="utf-8")
            print(f"wrote {path}")
    except OSError as exc:
        print_errors(PROG, [f"cannot write to {args.out}: {exc.strerror or exc}"])
        return 1
    return 0


def _render(args: argparse.Namespace, *, env: Mapping[str, str]) -> dict[str, str]:
    """The Bins to output, keyed by file name (a region, or "local")."""
    if args.url and args.all_regions:
        raise UsageError("--url streams to your own runner: drop --all-regions")
    if args.all_regions and args.out is None:
        raise UsageError("--all-regions writes one file per region: add --out DIR")
    if args.all_regions and args.region:
        raise UsageError("--all-regions renders every region: drop --region")
    extra = parse_parameter_options(args.param, language=args.language)
    missing: list[str] = []
    target = agent_target(
        args,
        env=env,
        deploy=read_deploy(args, env),
        region=REGIONS[0] if args.all_regions else args.region,
        missing=missing,
    )
    if missing:
        raise UsageError("\n".join(missing))
    if args.all_regions:
        targets = {
            region: dataclasses.replace(target, url=stream_url(region), region=region)
            for region in REGIONS
        }
    else:
        targets = {target.region or "local": target}
    parameters = stream_parameters(
        target,
        from_number=BIN_FROM,
        to_number=BIN_TO,
        stream_secret=env.get("STREAM_SECRET", "").strip() or None,
        extra=extra,
    )
    return {name: stream_twiml(each.url, parameters, pretty=True) for name, each in targets.items()}
