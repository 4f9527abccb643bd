"""Print or write the TwiML Bin that connects a Twilio phone number to the agent."""

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv

from operator_tools.twiml import (
    REGIONS,
    TwimlError,
    cloud_target,
    deploy_config_path,
    local_target,
    parse_parameter_options,
    read_deploy_config,
    stream_parameters,
    stream_twiml,
)

PROG = "render_twiml.py"
# Twilio fills these in for each call that reaches a TwiML Bin.
BIN_FROM = "{{From}}"
BIN_TO = "{{To}}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """One line instead of argparse's usage block: the problem, then where to look."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Render the TwiML Bin for a Twilio number. Defaults come from "
        "pcc-deploy.toml (agent_name, region) and PIPECAT_ORG.",
    )
    parser.add_argument("--region", help=f"Pipecat Cloud region: {', '.join(REGIONS)}")
    parser.add_argument("--agent", help="agent name (default: agent_name in pcc-deploy.toml)")
    parser.add_argument(
        "--org", help="organization (default: PIPECAT_ORG, then the pipecat cloud CLI login)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra <Parameter> for the bot (repeatable)",
    )
    parser.add_argument("--all-regions", action="store_true", help="one Bin per region (--out)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write REGION.xml files here")
    parser.add_argument(
        "--local", metavar="wss://HOST/ws", help="stream to your own runner behind a tunnel"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="deploy config (default: PIPECAT_DEPLOY_CONFIG_PATH or ./pcc-deploy.toml)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # STREAM_SECRET and PIPECAT_ORG usually live there.
    try:
        bins = _render(args, env=os.environ)
    except TwimlError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
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
        print(f"{PROG}: error: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _render(args: argparse.Namespace, *, env: Mapping[str, str]) -> dict[str, str]:
    """The Bins to output, keyed by file name (a region, or "local")."""
    extra = parse_parameter_options(args.param)
    stream_secret = env.get("STREAM_SECRET", "").strip() or None
    if args.local:
        if args.region or args.agent or args.org or args.all_regions:
            raise TwimlError(
                "--local streams to your own runner: drop --region/--agent/--org/--all-regions"
            )
        targets = {"local": local_target(args.local)}
    else:
        config_path = deploy_config_path(args.config, env)
        deploy = read_deploy_config(config_path, required=args.config is not None)
        if args.all_regions and args.out is None:
            raise TwimlError("--all-regions writes one file per region: add --out DIR")
        if args.all_regions and args.region:
            raise TwimlError("--all-regions renders every region: drop --region")
        regions = REGIONS if args.all_regions else [args.region]
        targets = {}
        for region in regions:
            target = cloud_target(
                region=region,
                agent=args.agent,
                org=args.org,
                deploy=deploy,
                env=env,
                config_path=config_path,
            )
            targets[target.region] = target
    return {
        name: stream_twiml(
            target.url,
            stream_parameters(
                target,
                from_number=BIN_FROM,
                to_number=BIN_TO,
                stream_secret=stream_secret,
                extra=extra,
            ),
            pretty=True,
        )
        for name, target in targets.items()
    }


if __name__ == "__main__":
    sys.exit(main())
