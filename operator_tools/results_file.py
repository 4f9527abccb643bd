"""A campaign's results file: the append-only record of who has been dialled, read to resume."""

import csv
from pathlib import Path

from operator_tools.campaign_csv import Row
from operator_tools.cli import UsageError

RESULT_COLUMNS = ["row", "to", "call_sid", "status", "answered_by", "error"]
# Result statuses written by dial-out; the others are Twilio's call statuses.
DIALLING, UNKNOWN, ERROR = "dialling", "unknown", "error"


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
        """The numbers not to dial again, and those of them whose last attempt has no known
        outcome (mapped to the row of that attempt)."""
        called: set[str] = set()
        last_status: dict[str, str] = {}
        last_row: dict[str, str] = {}
        try:
            with self.path.open(newline="", encoding="utf-8") as file:
                reader = csv.DictReader(file)
                if reader.fieldnames not in (None, RESULT_COLUMNS):
                    raise UsageError(
                        f"{self.path} is not a results file of dialout.py "
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
