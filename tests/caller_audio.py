"""The recorded caller lines in tests/audio that simulated callers say."""

from pathlib import Path

AUDIO = Path(__file__).resolve().parent / "audio"


def caller_line(name: str) -> str:
    """The words spoken in ``AUDIO / f"{name}.wav"``, from lines.txt."""
    for line in (AUDIO / "lines.txt").read_text().splitlines():
        key, _, text = line.partition("|")
        if key == name:
            return text
    raise KeyError(name)
