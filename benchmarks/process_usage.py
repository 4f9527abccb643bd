"""CPU time and resident memory of a process and its descendants, and the machine's busy time."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import psutil


def _tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every live process below it."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _sum_over_tree(pid: int, figure: Callable[[psutil.Process], float]) -> float:
    total = 0.0
    for process in _tree(pid):
        # A process below the root may end between the listing and the reading.
        try:
            total += figure(process)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


def _cpu_seconds_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants, reaped children included."""
    return _sum_over_tree(pid, _cpu_seconds_of)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants now."""
    return int(_sum_over_tree(pid, lambda process: process.memory_info().rss))


@dataclass
class PeakRss:
    """Samples resident memory while running: the OS keeps no resettable peak for a tree."""

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
    """CPU time every core of the machine has spent busy since boot (all processes).

    Busy is everything but idle and waiting for I/O; guest time is already inside
    ``user`` and ``nice``, so it is not added again.
    """
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal
