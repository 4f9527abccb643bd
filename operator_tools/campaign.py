"""A campaign: every row of a CSV file dialled, paced, bounded, and resumable from its results."""

import asyncio
import time
from collections import Counter
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from bot_runtime.phone_numbers import mask
from operator_tools.campaign_csv import Row, read_rows
from operator_tools.cli import EXIT_TWILIO_ERROR
from operator_tools.outbound import OutboundCalls
from operator_tools.progress import Progress
from operator_tools.results_file import DIALLING, ERROR, UNKNOWN, ResultsFile
from operator_tools.twilio_calls import CallsApi, TwilioFailure
from operator_tools.twiml import TwimlError


class Campaign:
    """The calls of one run of a campaign file, and how they went."""

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
        self.calls = calls  # Each row still to dial, with its create-call form.
        self.notes = notes  # Rows skipped, and why.
        self.outcomes: Counter[str] = Counter()
        self.in_flight = 0
        self.placed: set[int] = set()  # Rows with a live call: they go on if we stop.
        self.stop_reason: str | None = None
        self.progress = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            total=len(calls),
        )

    @classmethod
    def load(cls, source: Path, *, results: ResultsFile, outbound: OutboundCalls) -> "Campaign":
        """Read the rows to dial: invalid ones and those already dialled become notes.

        A real run has locked ``results`` before this reads it.
        """
        rows, notes = read_rows(source, extra=outbound.extra)
        dialled, unknown, repaired = results.dialled()
        if repaired:
            notes.append(repaired)
        results_path = results.path
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

    async def run(
        self, api: CallsApi, *, cps: float, concurrency: int, poll_interval: float
    ) -> int:
        """Dial every row; returns the exit code (1 when an account-wide error stopped it)."""
        for note in self.notes:
            self.progress.print(note)
        if not self.calls:
            print(f"Nothing to dial. Results in {self.results.path}")
            return 0
        self.results.open()
        self.progress.print(
            f"Dialling {len(self.calls)} numbers from {self.source} to "
            f"{self.outbound.target.describe()}: at most {cps:g} calls/s, "
            f"{concurrency} in flight; results in {self.results.path}"
        )
        self._show_progress()
        try:
            with self.progress:
                await self._dial_all(
                    api, cps=cps, concurrency=concurrency, poll_interval=poll_interval
                )
        except asyncio.CancelledError:
            self.progress.print(
                f"Interrupted: {len(self.placed)} calls already placed go on. Run the "
                "same command again to resume; nobody is dialled twice."
            )
            raise
        finally:
            self.results.close()
        print(
            f"{sum(self.outcomes.values())} of {len(self.calls)} numbers done: "
            f"{_count(self.outcomes)}. Results in {self.results.path}"
        )
        if self.stop_reason:
            self.progress.print(
                f"dialout.py: error: stopped the campaign: {self.stop_reason}. "
                "Fix it and run the same command again to resume"
            )
            return EXIT_TWILIO_ERROR
        return 0

    async def _dial_all(
        self, api: CallsApi, *, cps: float, concurrency: int, poll_interval: float
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
        self, api: CallsApi, row: Row, fields: dict, slots: asyncio.Semaphore, poll_interval: float
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
                final = await api.follow(call.sid, poll_interval=poll_interval)
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
        self.progress.print(
            f"row {row.number} {mask(row.to)}: {outcome}" + (f": {error}" if error else "")
        )

    def _show_progress(self) -> None:
        self.progress.update(
            f"{self.in_flight} in flight · {_count(self.outcomes) or 'starting'}",
            completed=sum(self.outcomes.values()),
        )


def _count(outcomes: Counter[str]) -> str:
    return ", ".join(f"{n} {status}" for status, n in outcomes.most_common())
