"""Dial-out's progress on stderr: lines that stay, and on a terminal one live line below them."""

import sys

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import ProgressColumn


class Progress:
    """Permanent lines for every reader; a live rich progress line only on a terminal.

    When stderr is not a terminal (CI, a log file, the tests) there is no live line and
    the permanent lines are plain text, one per line. FORCE_COLOR, which many CI setups
    set, makes rich treat a pipe as a terminal; the isatty() check keeps redraws out of
    such logs. Use it with ``with``: the live line is cleared on the way out.
    """

    def __init__(self, *columns: str | ProgressColumn, total: float | None = None) -> None:
        self._console = Console(stderr=True, highlight=False, emoji=False)
        self.live = sys.stderr.isatty() and self._console.is_interactive
        # stdout is left alone: it carries the Call SID and the summary, maybe into a pipe.
        self._display = RichProgress(
            *columns,
            console=self._console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            disable=not self.live,
        )
        self._task = self._display.add_task("", total=total)

    def __enter__(self) -> "Progress":
        self._display.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._display.stop()

    def print(self, line: str) -> None:
        """A line that stays (above the live line on a terminal)."""
        if self.live:
            self._console.print(line, markup=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def update(self, text: str, *, completed: int | None = None) -> None:
        """Change the live line: its ``text`` (the task's description), and how much is done."""
        self._display.update(self._task, description=text, completed=completed)
