"""Start outbound calls that connect to the agent: one number, or a campaign from a CSV file."""

import argparse
import asyncio
import csv
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from dotenv import load_dotenv
from twilio.base.exceptions import TwilioRestException

from bot_runtime.phone_numbers import is_e164, mask
from bot_runtime.settings import ConfigError, TwilioSettings
from bot_runtime.twilio_rest import describe_rest_error, rest_error_code, twilio_client
from operator_tools.twiml import (
    MAX_INLINE_TWIML_CHARS,
    REGIONS,
    StreamTarget,
    TwimlError,
    check_parameter,
    check_parameter_count,
    cloud_target,
    deploy_config_path,
    local_target,
    parse_parameter_options,
    read_deploy_config,
    stream_parameters,
    stream_twiml,
)

PROG = "dialout.py"
EXIT_TWILIO_ERROR = 1  # Twilio refused, could not be reached, or a campaign stopped.
EXIT_USAGE = 2  # Options, numbers, files or credentials need fixing.
EXIT_NOT_CONNECTED = 3  # --wait: busy, no answer, failed or canceled.
EXIT_INTERRUPTED = 130

FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
NOT_CONNECTED = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "failed": "Twilio could not place the call (see the Twilio console's call log)",
    "canceled": "the call was canceled before it was answered",
}
# What to do about the Twilio errors people meet when dialling out.
TWILIO_FIXES = {
    20003: "Twilio rejected the credentials: check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN "
    "(or TWILIO_API_KEY/TWILIO_API_SECRET); an account outside US1 also needs TWILIO_REGION",
    20404: "Twilio does not know this account or call: check TWILIO_ACCOUNT_SID",
    20429: "Twilio is limiting the request rate: lower --cps and --concurrency",
    21210: "the From number is not verified for this account: use a Twilio number you own "
    "(--from or TWILIO_PHONE_NUMBER)",
    21211: "Twilio says the To number is invalid: check the number",
    21212: "Twilio says the From number is invalid: use a Twilio number you own "
    "(--from or TWILIO_PHONE_NUMBER)",
    21214: "the To number cannot be reached",
    21215: "no geo permission to call this country: enable it in the Twilio console, "
    "Voice > Settings > Geo permissions",
    21216: "this account may not call that number (blocked or premium rate)",
    21217: "the To number is not a valid phone number",
    21219: "trial accounts may only call verified numbers: verify it in the Twilio console "
    "(Phone Numbers > Verified Caller IDs) or upgrade the account",
}
# Errors every row of a campaign would hit the same way: the campaign stops at the first.
ACCOUNT_WIDE_CODES = frozenset({20003, 20429, 21210, 21212})
# The Calls API's form fields, as keyword arguments of the SDK's create().
SDK_ARGUMENTS = {
    "To": "to",
    "From": "from_",
    "Twiml": "twiml",
    "MachineDetection": "machine_detection",
    "Timeout": "timeout",
}
RESULT_COLUMNS = ["row", "to", "call_sid", "status", "answered_by", "error"]
# Result statuses written by this script; the others are Twilio's call statuses.
DIALLING, UNKNOWN, ERROR = "dialling", "unknown", "error"


class UsageError(Exception):
    """Something the user must fix before any call is made; exit code 2."""


class TwilioFailure(Exception):
    """Twilio refused a request or could not be reached; exit code 1."""

    def __init__(self, message: str, *, account_wide: bool = True, sent: bool = False) -> None:
        super().__init__(message)
        self.account_wide = account_wide
        self.sent = sent  # The request may have reached Twilio: a call may exist.


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """One line instead of argparse's usage block: the problem, then where to look."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Call a number, or every row of a CSV file, and connect the call to the "
        "agent with inline TwiML. Prints the Call SID.",
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--to", metavar="+NUMBER", help="the E.164 number to call")
    who.add_argument("--to-file", type=Path, metavar="CSV", help="a campaign: a 'to' column")
    parser.add_argument(
        "--from",
        dest="from_number",
        metavar="+NUMBER",
        help=("caller ID, a Twilio number you own (default: TWILIO_PHONE_NUMBER)"),
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra <Parameter> for the bot (repeatable)",
    )
    parser.add_argument("--region", help=f"Pipecat Cloud region: {', '.join(REGIONS)}")
    parser.add_argument("--agent", help="agent name (default: agent_name in pcc-deploy.toml)")
    parser.add_argument("--org", help="organization (default: PIPECAT_ORG, then CLI login)")
    parser.add_argument("--url", metavar="wss://HOST/ws", help="your own runner instead")
    parser.add_argument("--config", type=Path, help="deploy config (default ./pcc-deploy.toml)")
    parser.add_argument("--wait", action="store_true", help="follow the call until it ends")
    parser.add_argument("--dry-run", action="store_true", help="print the request, call nobody")
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
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # The Twilio keys usually live there.
    try:
        return asyncio.run(_run(args, env=os.environ))
    except (UsageError, TwimlError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ConfigError as exc:
        for problem in str(exc).splitlines():
            print(f"{PROG}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except TwilioFailure as exc:
        return _fail(str(exc), EXIT_TWILIO_ERROR)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # A bug: still one line, as promised, naming what broke.
        return _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_TWILIO_ERROR)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


async def _run(args: argparse.Namespace, *, env: Mapping[str, str]) -> int:
    _check_options(args)
    settings = TwilioSettings.from_env(env)
    from_number = args.from_number or settings.phone_number
    if not from_number:
        raise UsageError(
            "no caller ID: pass --from +NUMBER (a Twilio number you own) or set TWILIO_PHONE_NUMBER"
        )
    _check_number(from_number, what="--from" if args.from_number else "TWILIO_PHONE_NUMBER")
    deploy_path = deploy_config_path(args.config, env)
    deploy = read_deploy_config(deploy_path, required=args.config is not None)
    if args.url:
        target = local_target(args.url)
    else:
        target = cloud_target(
            region=args.region,
            agent=args.agent,
            org=args.org,
            deploy=deploy,
            env=env,
            config_path=deploy_path,
        )
    outbound = OutboundCalls(
        target=target,
        from_number=from_number,
        stream_secret=env.get("STREAM_SECRET", "").strip() or None,
        extra=parse_parameter_options(args.param),
        machine_detection=args.machine_detection,
        timeout=args.timeout,
    )
    if args.to_file:
        campaign = Campaign.load(
            args.to_file,
            results_path=args.results or args.to_file.with_name(f"results-{args.to_file.stem}.csv"),
            outbound=outbound,
        )
        if args.dry_run:
            return campaign.dry_run(settings)
        concurrency = args.concurrency or deploy.max_agents or 1
        async with TwilioApi(settings) as api:
            return await campaign.run(
                api, cps=args.cps, concurrency=concurrency, poll_interval=args.poll_interval
            )
    _check_number(args.to, what="--to")
    fields = outbound.fields(to=args.to)
    if args.dry_run:
        print(stream_twiml(target.url, outbound.parameters(args.to), pretty=True))
        _print_request(settings, fields)
        return 0
    async with TwilioApi(settings) as api:
        return await _call_one(api, fields, wait=args.wait, poll_interval=args.poll_interval)


def _check_options(args: argparse.Namespace) -> None:
    if args.url and (args.region or args.agent or args.org):
        raise UsageError("--url streams to your own runner: drop --region/--agent/--org")
    if args.timeout is not None and not 5 <= args.timeout <= 600:
        raise UsageError(f"--timeout {args.timeout}: Twilio rings for 5 to 600 seconds")
    if args.cps <= 0 or args.poll_interval <= 0:
        raise UsageError("--cps and --poll-interval must be more than 0")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.to and (args.results or args.concurrency):
        raise UsageError("--results and --concurrency are for campaigns (--to-file)")


def _check_number(number: str, *, what: str) -> None:
    if not is_e164(number):
        raise UsageError(
            f"{what} is not an E.164 number: write + then the country code and "
            "number, no spaces, e.g. +14155550123"
        )


@dataclass(frozen=True)
class OutboundCalls:
    """What every outbound call of this run shares: the agent, caller ID and options."""

    target: StreamTarget
    from_number: str
    stream_secret: str | None
    extra: Mapping[str, str]
    machine_detection: bool
    timeout: int | None

    def parameters(self, to: str, row_parameters: Mapping[str, str] | None = None) -> dict:
        return stream_parameters(
            self.target,
            from_number=self.from_number,
            to_number=to,
            stream_secret=self.stream_secret,
            extra={**self.extra, **(row_parameters or {})},
            call_type="outbound",
        )

    def fields(self, *, to: str, row_parameters: Mapping[str, str] | None = None) -> dict:
        """The create-call form: inline TwiML, so no webhook round trip on answer."""
        twiml = stream_twiml(self.target.url, self.parameters(to, row_parameters))
        if len(twiml) > MAX_INLINE_TWIML_CHARS:
            raise TwimlError(
                f"the TwiML is {len(twiml)} characters and Twilio takes at most "
                f"{MAX_INLINE_TWIML_CHARS}: shorten the parameter values"
            )
        fields: dict[str, str | int] = {"To": to, "From": self.from_number, "Twiml": twiml}
        if self.machine_detection:
            fields["MachineDetection"] = "Enable"
        if self.timeout is not None:
            fields["Timeout"] = self.timeout
        return fields


class TwilioApi:
    """The two requests this script makes, each failure turned into one line.

    Use it with ``async with``: the SDK's HTTP session is closed on the way out,
    Ctrl-C included.
    """

    def __init__(self, settings: TwilioSettings) -> None:
        if settings.missing_credentials:
            missing = " and ".join(settings.missing_credentials)
            raise UsageError(f"missing {missing}: set them in the environment or .env")
        self.settings = settings
        self.url = _api_url(settings)

    async def __aenter__(self) -> "TwilioApi":
        self._client_scope = twilio_client(self.settings)
        self.client = await self._client_scope.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client_scope.__aexit__(*exc_info)

    async def create(self, fields: Mapping[str, str | int]):
        arguments = {SDK_ARGUMENTS[name]: value for name, value in fields.items()}
        return await self._request(self.client.calls.create_async(**arguments))

    async def fetch(self, sid: str):
        return await self._request(self.client.calls(sid).fetch_async())

    async def _request(self, request):
        try:
            return await request
        except TwilioRestException as exc:
            raise TwilioFailure(
                describe_rest_error(exc, fixes=TWILIO_FIXES),
                account_wide=rest_error_code(exc) in ACCOUNT_WIDE_CODES,
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise TwilioFailure(
                f"cannot reach Twilio at {self.url} ({exc.strerror or exc}): "
                "check the network and TWILIO_API_BASE_URL/TWILIO_REGION"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TwilioFailure(
                f"no answer from Twilio at {self.url} ({str(exc) or type(exc).__name__})",
                sent=True,
            ) from None


def _api_url(settings: TwilioSettings) -> str:
    """The host the SDK will call, for messages and --dry-run."""
    if settings.api_base_url:
        return settings.api_base_url
    if settings.region:
        return f"https://api.{settings.edge}.{settings.region}.twilio.com"
    return "https://api.twilio.com"


def _print_request(settings: TwilioSettings, fields: Mapping[str, str | int]) -> None:
    account = settings.account_sid or "{TWILIO_ACCOUNT_SID}"
    print(f"POST {_api_url(settings)}/2010-04-01/Accounts/{account}/Calls.json")
    print(f"Auth: {_describe_auth(settings)}")
    for name, value in fields.items():
        print(f"{name}={value}")


def _describe_auth(settings: TwilioSettings) -> str:
    """Which credentials would be used, never the secret itself."""
    if settings.missing_credentials:
        return "none yet (" + " and ".join(settings.missing_credentials) + " not set)"
    if settings.api_key:
        return f"API key {settings.api_key} with TWILIO_API_SECRET"
    return f"account {settings.account_sid} with TWILIO_AUTH_TOKEN"


class StatusLine:
    """A line redrawn in place on a terminal; elsewhere (CI, a log) only permanent lines."""

    def __init__(self) -> None:
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.current = ""

    def update(self, text: str) -> None:
        if self.tty:
            self.current = text
            self.stream.write(f"\r\x1b[2K{text}")
            self.stream.flush()

    def print(self, line: str) -> None:
        """A line that stays, printed above the status line."""
        if self.tty:
            self.stream.write(f"\r\x1b[2K{line}\n{self.current}")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.current:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
        self.current = ""


async def _call_one(api: TwilioApi, fields: Mapping, *, wait: bool, poll_interval: float) -> int:
    to = str(fields["To"])
    call = await api.create(fields)
    print(call.sid, flush=True)
    line = StatusLine()
    line.print(f"Calling {mask(to)} from {mask(str(fields['From']))}: {call.sid} {call.status}")
    if not wait:
        return 0
    started = time.monotonic()

    def show(status: str, changed: bool) -> None:
        text = f"{call.sid} {mask(to)}: {status}"
        if line.tty:
            line.update(f"{text} · {time.monotonic() - started:.0f}s")
        elif changed:
            line.print(text)

    try:
        final = await _follow(api, call.sid, poll_interval=poll_interval, on_poll=show)
    except asyncio.CancelledError:
        line.close()
        line.print(f"Stopped following {call.sid}; the call goes on.")
        raise
    line.close()
    answered_by = f", answered by {final.answered_by}" if final.answered_by else ""
    line.print(
        f"{call.sid} {mask(to)}: {final.status}{answered_by} after "
        f"{time.monotonic() - started:.0f}s"
    )
    if final.status != "completed":
        line.print(f"The call did not connect: {NOT_CONNECTED.get(final.status, final.status)}")
        return EXIT_NOT_CONNECTED
    return 0


async def _follow(api: TwilioApi, sid: str, *, poll_interval: float, on_poll=None):
    """Fetch the call until it reaches a final status; returns the last fetch."""
    last_status = None
    while True:
        call = await api.fetch(sid)
        if on_poll:
            on_poll(call.status, call.status != last_status)
        last_status = call.status
        if call.status in FINAL_STATUSES:
            return call
        await asyncio.sleep(poll_interval)


@dataclass(frozen=True)
class Row:
    """One call of a campaign; ``number`` 1 is the first line under the header."""

    number: int
    to: str
    parameters: dict[str, str]


class ResultsFile:
    """The campaign's append-only log, the record of who has been dialled.

    A "dialling" line is written and flushed before each create request, and the
    Call SID as soon as Twilio answers, then the final status. A number with a Call
    SID, or whose last line is "dialling" or "unknown" (the request may have reached
    Twilio), is never dialled again; one whose last line is an error (Twilio refused,
    nobody was called) is retried by the next run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None

    def dialled(self) -> tuple[set[str], dict[str, str]]:
        """The numbers already called, and those whose last attempt has no known outcome."""
        called: set[str] = set()
        last_status: dict[str, str] = {}
        last_row: dict[str, str] = {}
        try:
            with self.path.open(newline="", encoding="utf-8") as file:
                reader = csv.DictReader(file)
                if reader.fieldnames not in (None, RESULT_COLUMNS):
                    raise UsageError(
                        f"{self.path} is not a results file of {PROG} "
                        f"(its columns should be {','.join(RESULT_COLUMNS)})"
                    )
                for line in reader:
                    if line["call_sid"]:
                        called.add(line["to"])
                    last_status[line["to"]] = line["status"]
                    last_row[line["to"]] = line["row"]
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"cannot read {self.path}: {exc}") from None
        unknown = {
            to: last_row[to]
            for to, status in last_status.items()
            if to not in called and status in (DIALLING, UNKNOWN)
        }
        return called | set(unknown), unknown

    def open(self) -> None:
        """Open for appending before the first call, so an unwritable file stops nobody mid-way."""
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._file = self.path.open("a", newline="", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._writer = csv.writer(self._file)
        if is_new:
            self._writer.writerow(RESULT_COLUMNS)

    def append(
        self,
        row: Row,
        *,
        call_sid: str = "",
        status: str,
        answered_by: str | None = None,
        error: str = "",
    ) -> None:
        self._writer.writerow([row.number, row.to, call_sid, status, answered_by or "", error])
        self._file.flush()  # A killed run must still find every line on resume.

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Campaign:
    """Dial every row of a CSV file, paced, bounded, and resumable from its results file."""

    def __init__(
        self,
        *,
        source: Path,
        results: ResultsFile,
        outbound: OutboundCalls,
        calls: list[tuple[Row, dict]],
        notes: list[str],
    ) -> None:
        self.source = source
        self.results = results
        self.outbound = outbound
        self.calls = calls
        self.notes = notes
        self.outcomes: Counter[str] = Counter()
        self.in_flight = 0
        self.placed: set[int] = set()  # Rows with a live call: they go on if we stop.
        self.stop_reason: str | None = None
        self.line = StatusLine()

    @classmethod
    def load(cls, source: Path, *, results_path: Path, outbound: OutboundCalls) -> "Campaign":
        """Read the rows to dial: invalid ones and those already dialled become notes."""
        rows, notes = _read_rows(source, extra=outbound.extra)
        results = ResultsFile(results_path)
        dialled, unknown = results.dialled()
        calls, seen, already = [], {}, 0
        for row in rows:
            if row.to in unknown:
                notes.append(
                    f"row {row.number}: the last attempt (row {unknown[row.to]}) may "
                    "have reached Twilio; not dialled again. Check the Twilio call log, "
                    f"then delete its lines from {results_path} to dial it"
                )
            elif row.to in dialled:
                already += 1
            elif row.to in seen:
                notes.append(f"row {row.number}: same number as row {seen[row.to]}; skipped")
            else:
                try:
                    fields = outbound.fields(to=row.to, row_parameters=row.parameters)
                except TwimlError as exc:
                    notes.append(f"row {row.number}: {exc}; skipped")
                    continue
                seen[row.to] = row.number
                calls.append((row, fields))
        if already:
            notes.append(f"{already} rows already dialled (in {results_path}) are skipped")
        return cls(source=source, results=results, outbound=outbound, calls=calls, notes=notes)

    def dry_run(self, settings: TwilioSettings) -> int:
        for note in self.notes:
            print(note, file=sys.stderr)
        for row, fields in self.calls:
            print(f"# row {row.number}")
            _print_request(settings, fields)
        print(f"{len(self.calls)} calls would be made")
        return 0

    async def run(
        self, api: TwilioApi, *, cps: float, concurrency: int, poll_interval: float
    ) -> int:
        for note in self.notes:
            self.line.print(note)
        if not self.calls:
            print(f"Nothing to dial. Results in {self.results.path}")
            return 0
        self.results.open()
        self.line.print(
            f"Dialling {len(self.calls)} numbers from {self.source} to "
            f"{self.outbound.target.describe()}: at most {cps:g} calls/s, "
            f"{concurrency} in flight; results in {self.results.path}"
        )
        try:
            await self._dial_all(api, cps=cps, concurrency=concurrency, poll_interval=poll_interval)
        except asyncio.CancelledError:
            self.line.close()
            self.line.print(
                f"Interrupted: {len(self.placed)} calls already placed go on. Run the "
                "same command again to resume; nobody is dialled twice."
            )
            raise
        finally:
            self.results.close()
        self.line.close()
        print(
            f"{sum(self.outcomes.values())} of {len(self.calls)} numbers done: "
            f"{_count(self.outcomes)}. Results in {self.results.path}"
        )
        if self.stop_reason:
            self.line.print(
                f"{PROG}: error: stopped the campaign: {self.stop_reason}. "
                "Fix it and run the same command again to resume"
            )
            return EXIT_TWILIO_ERROR
        return 0

    async def _dial_all(
        self, api: TwilioApi, *, cps: float, concurrency: int, poll_interval: float
    ) -> None:
        """Start calls no closer than 1/cps apart, with at most ``concurrency`` in flight.

        Each start books the next slot from the moment it actually started, so calls
        held back by the concurrency limit never go out in a burst afterwards.
        """
        slots = asyncio.Semaphore(concurrency)
        next_start = time.monotonic()
        async with asyncio.TaskGroup() as tasks:
            for row, fields in self.calls:
                await slots.acquire()
                await asyncio.sleep(max(0.0, next_start - time.monotonic()))
                if self.stop_reason:
                    slots.release()
                    break
                next_start = time.monotonic() + 1 / cps
                self.in_flight += 1
                tasks.create_task(self._dial(api, row, fields, slots, poll_interval))

    async def _dial(
        self, api: TwilioApi, row: Row, fields: dict, slots: asyncio.Semaphore, poll_interval: float
    ) -> None:
        try:
            self.results.append(row, status=DIALLING)
            try:
                call = await api.create(fields)
            except TwilioFailure as exc:
                self._finish(row, status=UNKNOWN if exc.sent else ERROR, error=str(exc))
                if exc.account_wide:
                    self.stop_reason = self.stop_reason or str(exc)
                return
            self.results.append(row, call_sid=call.sid, status=call.status)
            self.placed.add(row.number)
            self._show_progress()
            try:
                final = await _follow(api, call.sid, poll_interval=poll_interval)
            except TwilioFailure as exc:
                self._finish(
                    row,
                    call_sid=call.sid,
                    status=UNKNOWN,
                    error=f"stopped following the call: {exc}",
                )
                return
            self._finish(row, call_sid=call.sid, status=final.status, answered_by=final.answered_by)
        finally:
            self.in_flight -= 1
            slots.release()
            self._show_progress()

    def _finish(
        self,
        row: Row,
        *,
        status: str,
        call_sid: str = "",
        answered_by: str | None = None,
        error: str = "",
    ) -> None:
        self.results.append(
            row, call_sid=call_sid, status=status, answered_by=answered_by, error=error
        )
        self.outcomes[status] += 1
        self.placed.discard(row.number)
        outcome = f"{call_sid} {status}".strip() + (f" ({answered_by})" if answered_by else "")
        self.line.print(
            f"row {row.number} {mask(row.to)}: {outcome}" + (f": {error}" if error else "")
        )

    def _show_progress(self) -> None:
        done, total = sum(self.outcomes.values()), len(self.calls)
        filled = round(20 * done / total) if total else 20
        self.line.update(
            f"[{'#' * filled}{'.' * (20 - filled)}] {done}/{total} · "
            f"{self.in_flight} in flight · {_count(self.outcomes) or 'starting'}"
        )


def _count(outcomes: Counter[str]) -> str:
    return ", ".join(f"{n} {status}" for status, n in outcomes.most_common())


def _read_rows(path: Path, *, extra: Mapping[str, str]) -> tuple[list[Row], list[str]]:
    """The CSV's rows: a 'to' column, and one column per parameter for the bot."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            lines = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not lines:
        raise UsageError(f"{path} is empty: it needs a header line with a 'to' column")
    header = ["to" if name.strip().lower() == "to" else name.strip() for name in lines[0]]
    if "to" not in header:
        raise UsageError(
            f"{path} has no 'to' column (its columns: {', '.join(header)}): "
            "name the phone number column 'to'"
        )
    names = [name for name in header if name and name != "to"]  # Spreadsheets add empty ones.
    if len(set(names)) != len(names) or header.count("to") > 1:
        raise UsageError(f"{path} names a column twice: {', '.join(header)}")
    for name in names:
        check_parameter(name, "", source=f"column {name!r} of {path}")
        if name in extra:
            raise UsageError(f"{name!r} is both a --param and a column of {path}: keep one")
    check_parameter_count({**extra, **dict.fromkeys(names, "")})
    rows, notes = [], []
    for number, values in enumerate(lines[1:], start=1):
        if not any(value.strip() for value in values):
            continue
        cells = dict(zip(header, (value.strip() for value in values), strict=False))
        to = re.sub(r"[\s().-]", "", cells.get("to", ""))
        if not is_e164(to):
            notes.append(
                f"row {number}: 'to' is not an E.164 number (+ and the country code; "
                "spreadsheets often drop the +); skipped"
            )
            continue
        parameters = {name: cells[name] for name in names if cells.get(name)}
        try:
            for name, value in parameters.items():
                check_parameter(name, value, source=f"row {number}")
        except TwimlError as exc:
            notes.append(f"{exc}; skipped")
            continue
        rows.append(Row(number, to, parameters))
    return rows, notes


if __name__ == "__main__":
    sys.exit(main())
