"""CPU time and resident memory of a process and its descendants, read from /proc."""

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (threads' children included)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(child) for child in children.read_text().split()]
            except OSError:  # The thread or process ended meanwhile.
                continue
    return found


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces; everything after its ')' is space-separated.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants, reaped children included."""
    total = 0
    for each in descendants(pid):
        try:
            fields = _stat_fields(each)
        except OSError:
            continue
        # utime, stime, cutime, cstime are fields 14-17; fields[0] here is field 3.
        total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants now."""
    total = 0
    for each in descendants(pid):
        try:
            total += int(Path(f"/proc/{each}/statm").read_text().split()[1]) * PAGE_BYTES
        except OSError:
            continue
    return total


@dataclass
class PeakRss:
    """Samples resident memory while running, since /proc keeps no resettable peak per tree."""

    pid: int
    interval_secs: float = 0.2
    peak_bytes: int = 0

    async def sample_forever(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_secs)

    def sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, rss_bytes(self.pid))

    def reset(self) -> None:
        self.peak_bytes = rss_bytes(self.pid)


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot (all processes)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / CLOCK_TICKS
