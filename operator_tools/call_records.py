"""call_records.py: the call records waiting in the spool, listed, or sent again now."""

import argparse
import asyncio
import os
from collections.abc import Mapping

from dotenv import load_dotenv

from bot_runtime.after_call import spool
from bot_runtime.after_call.spool import SpooledRecord
from bot_runtime.after_call.webhook import attempt
from bot_runtime.config.call_records import RecordDelivery, read_call_records
from bot_runtime.config.environment import ConfigError, EnvReader
from bot_runtime.http_session import http_session
from bot_runtime.phone_numbers import mask
from operator_tools.cli import EXIT_TWILIO_ERROR, EXIT_USAGE, OneLineErrorParser, print_errors

PROG = "call_records.py"
EXIT_NOT_DELIVERED = EXIT_TWILIO_ERROR  # 1: something could not be sent; 2: fix the settings.
# What a record spooled before its analysis was written says, sent from here without one.
ANALYSIS_NOT_WRITTEN = {
    "summary": None,
    "fields": None,
    "error": "analysis failed: the bot stopped before writing it",
}


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="List the call records waiting in the spool (CALL_RECORD_SPOOL_DIR), or "
        "send them to CALL_WEBHOOK_URL now with --send. Reads the bot's settings from the "
        "environment or .env.",
    )
    parser.add_argument(
        "--send", action="store_true", help="send every waiting record now, one line each"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run call_records.py with ``argv``; 0 all sent (or listed), 1 one failed, 2 fix settings."""
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # The bot's settings usually live there.
    try:
        return asyncio.run(_run(args, env=os.environ))
    except ConfigError as exc:
        print_errors(PROG, str(exc).splitlines())
        return EXIT_USAGE


async def _run(args: argparse.Namespace, *, env: Mapping[str, str]) -> int:
    reader = EnvReader(env)
    settings = read_call_records(reader)
    if args.send and not settings["call_webhook_url"]:
        reader.problems.append("--send needs CALL_WEBHOOK_URL and CALL_WEBHOOK_SECRET")
    reader.raise_if_problems()
    folder = settings["call_record_spool_dir"]
    waiting, unreadable = spool.waiting(folder)
    for name in unreadable:
        print(f"{name}: cannot be read, left where it is")
    if not waiting:
        print(f"No call record waiting in {folder}")
        return EXIT_NOT_DELIVERED if unreadable and args.send else 0
    if not args.send:
        for spooled in waiting:
            print(describe(spooled))
        print(f"{len(waiting)} call record(s) waiting in {folder}; send them with --send")
        return 0
    delivery = RecordDelivery(
        url=settings["call_webhook_url"],
        secret=settings["call_webhook_secret"],
        spool_dir=folder,
    )
    try:
        failed = await _send(waiting, delivery=delivery)
    finally:
        await http_session().close()
    return EXIT_NOT_DELIVERED if failed or unreadable else 0


async def _send(waiting: list[SpooledRecord], *, delivery: RecordDelivery) -> int:
    """Send each record once, one line each; how many were not delivered."""
    failed = 0
    for spooled in waiting:
        if spooled.analysis_pending:
            spooled.record["analysis"] = ANALYSIS_NOT_WRITTEN
            spooled.analysis_pending = False
        problem, _ = await attempt(spooled, delivery=delivery)
        if problem is None:
            print(f"{spooled.call_sid}: delivered ({spooled.webhook_id})")
            continue
        failed += 1
        spool.update(delivery.spool_dir, spooled)
        print(f"{spooled.call_sid}: not delivered: {problem}; still waiting")
    return failed


def describe(spooled: SpooledRecord) -> str:
    """One line about a waiting record: which call, when, how its delivery went (numbers masked)."""
    record = spooled.record
    parts = [
        f"{spooled.call_sid} ({record.get('direction')}, {mask(record.get('from'))} to "
        f"{mask(record.get('to'))}, ended {record.get('ended_at')})",
        f"webhook-id {spooled.webhook_id}",
        f"{spooled.attempts} attempt(s)",
    ]
    if spooled.last_outcome:
        parts.append(f"last: {spooled.last_outcome}")
    if spooled.next_attempt_at:
        parts.append(f"next try {spooled.next_attempt_at} if the bot is running")
    if spooled.analysis_pending:
        parts.append("analysis not written yet")
    return ", ".join(parts)
