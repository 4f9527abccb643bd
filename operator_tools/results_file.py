"""A campaign's results file: the append-only record of who has been dialled, read to resume."""

import asyncio
import csv
import fcntl
import io
import os
from datetime import datetime
from pathlib import Path

from operator_tools.campaign_csv import Row
from operator_tools.cli import UsageError

RESULT_COLUMNS = ["row", "to", "call_sid", "status", "answered_by", "error"]
# Result statuses written by dial-out; the others are Twilio's call statuses.
DIALLING, UNKNOWN, ERROR = "dialling", "unknown", "error"


class ResultsFile:
    """The campaign's append-only log, the record of who has been dialled.

    A "dialling" line is written and synced to disk before each create request, and
    the Call SID as soon as Twilio answers, then the final status. A number with a
    Call SID, or whose last line is "dialling" or "unknown" (the request may have
    reached Twilio), is never dialled again; one whose last line is an error (Twilio
    refused, nobody was called) is retried by the next run.

    One run at a time holds the file (``lock``): two runs reading it before either
    wrote would both dial its numbers. A last line without its newline was cut short
    (the run or the machine stopped while writing it) and is dropped: since each line
    is on disk before the step after it, its own step never happened. A cut "dialling"
    line's request was never sent, so its number is dialled again; a cut Call SID or
    status line leaves the "dialling" or Call SID line before it, so its number is not.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None
        self._lock_fd: int | None = None
        self._complete_bytes: int | None = None  # Where a cut-short last line starts.

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    async def lock(self) -> None:
        """Hold the file for this run, or stop naming the run that holds it.

        A lock file beside it carries the holder's pid and start time for that
        message; ``close`` removes it.
        """
        while True:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UsageError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = await _holder(fd)
                os.close(fd)
                raise UsageError(
                    f"{self.path} is in use by another dialout.py run ({holder}): wait for it "
                    "to end, or give this run its own --results file"
                ) from None
            # A run that just ended removed the file it locked: hold the one there now.
            if _same_file(fd, self._lock_path):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {datetime.now():%Y-%m-%d %H:%M:%S}".encode())
        self._lock_fd = fd

    def dialled(self) -> tuple[set[str], dict[str, str], str | None]:
        """The numbers not to dial again, those of them whose last attempt has no known
        outcome (mapped to the row of that attempt), and a note if the last line is dropped."""
        called: set[str] = set()
        last_status: dict[str, str] = {}
        last_row: dict[str, str] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        complete = data.rfind(b"\n") + 1
        note = None
        if complete < len(data):
            self._complete_bytes = complete
            note = (
                f"the last line of {self.path} was cut short when its run stopped: dropped "
                "(its row goes by its earlier lines)"
            )
        try:
            reader = csv.DictReader(io.StringIO(data[:complete].decode("utf-8"), newline=""))
            if reader.fieldnames not in (None, RESULT_COLUMNS):
                raise UsageError(
                    f"{self.path} is not a results file of dialout.py "
                    f"(its columns should be {','.join(RESULT_COLUMNS)})"
                )
            for line in reader:
                if None in line or None in line.values():
                    raise UsageError(
                        f"{self.path}, line {reader.line_num}: not a line dialout.py wrote "
                        "(two lines run together?): fix or delete it"
                    )
                if line["call_sid"]:
                    called.add(line["to"])
                last_status[line["to"]] = line["status"]
                last_row[line["to"]] = line["row"]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"cannot read {self.path}: {exc}") from None
        unknown = {
            to: last_row[to]
            for to, status in last_status.items()
            if to not in called and status in (DIALLING, UNKNOWN)
        }
        return called | set(unknown), unknown, note

    def open(self) -> None:
        """Open for appending before the first call, so an unwritable file stops nobody mid-way.

        A cut-short last line is dropped first, so the next line does not run into it.
        """
        try:
            if self._complete_bytes is not None:
                os.truncate(self.path, self._complete_bytes)
            is_new = not self.path.exists() or self.path.stat().st_size == 0
            self._file = self.path.open("a", newline="", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._writer = csv.writer(self._file)
        if is_new:
            self._writer.writerow(RESULT_COLUMNS)
            self._sync()

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
        self._sync()

    def _sync(self) -> None:
        """On disk before the step it records: a killed run, or a machine that lost power,
        must still find every line on resume."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file and let the next run have it (safe to call twice)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_fd is not None:
            self._lock_path.unlink(missing_ok=True)  # Before unlocking: see ``lock``.
            os.close(self._lock_fd)
            self._lock_fd = None


async def _holder(fd: int, *, wait_secs: float = 1.0) -> str:
    """The holding run's line; waits a moment for it, since a run takes the lock first
    and writes its line just after."""
    for _ in range(int(wait_secs / 0.02)):
        if line := os.pread(fd, 200, 0).decode(errors="replace").strip():
            return line
        await asyncio.sleep(0.02)
    return "just starting"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
