"""A campaign's CSV file: a 'to' column, and one column per parameter for the bot."""

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot_runtime.config.languages import LANGUAGE_PARAMETER
from bot_runtime.phone_numbers import PhoneNumberError, e164
from operator_tools.cli import UsageError
from operator_tools.twiml import TwimlError, check_parameter, check_parameter_count


@dataclass(frozen=True)
class Row:
    """One call of a campaign; ``number`` 1 is the first line under the header."""

    number: int
    to: str  # E.164
    parameters: dict[str, str]


def read_rows(path: Path, *, extra: Mapping[str, str]) -> tuple[list[Row], list[str]]:
    """The rows to call, and a note for each row skipped (bad number or value).

    A file that cannot work (unreadable, no 'to' column, a column clashing with
    ``extra``, the --param options) raises UsageError before anyone is called.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            lines = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not lines:
        raise UsageError(f"{path} is empty: it needs a header line with a 'to' column")
    header = ["to" if name.strip().lower() == "to" else name.strip() for name in lines[0]]
    names = _parameter_columns(path, header, extra=extra)
    rows, notes = [], []
    for number, values in enumerate(lines[1:], start=1):
        if not any(value.strip() for value in values):
            continue
        cells = dict(zip(header, (value.strip() for value in values), strict=False))
        parameters = {name: cells[name] for name in names if cells.get(name)}
        try:
            to = e164(cells.get("to", ""), what=f"row {number}: 'to'")
            for name, value in parameters.items():
                check_parameter(name, value, source=f"row {number}")
        except (PhoneNumberError, TwimlError) as exc:
            notes.append(f"{exc}; skipped")
            continue
        rows.append(Row(number, to, parameters))
    return rows, notes


def _parameter_columns(path: Path, header: list[str], *, extra: Mapping[str, str]) -> list[str]:
    """The header's parameter names, once the header is known to work."""
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
            option = "--language" if name == LANGUAGE_PARAMETER else "--param"
            raise UsageError(f"{name!r} is both a {option} and a column of {path}: keep one")
    check_parameter_count({**extra, **dict.fromkeys(names, "")})
    return names
