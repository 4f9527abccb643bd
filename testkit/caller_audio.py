"""What simulated callers say: the recorded lines in testkit/audio, and where the words are."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from testkit.phone_audio import MEDIA_FRAME_SECS, pcm16_bytes, pcm16_secs, read_wav_8k

AUDIO = Path(__file__).resolve().parent / "audio"
# A 20 ms frame at or above this RMS (about -50 dBFS) is speech: where the words are inside a
# recording that has a little silence before and after them.
SPEECH_RMS = 100


def caller_line(name: str) -> str:
    """The words spoken in ``AUDIO / f"{name}.wav"``, from lines.txt."""
    for line in (AUDIO / "lines.txt").read_text().splitlines():
        key, _, text = line.partition("|")
        if key == name:
            return text
    raise KeyError(name)


def words_span(pcm: bytes) -> tuple[float, float]:
    """Where the words start and end in 8 kHz PCM16, in seconds, to the 20 ms frame."""
    frame_samples = pcm16_bytes(MEDIA_FRAME_SECS) // 2
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    frames = samples[: len(samples) // frame_samples * frame_samples]
    rms = np.sqrt(np.mean(frames.reshape(-1, frame_samples) ** 2, axis=1))
    loud = np.flatnonzero(rms >= SPEECH_RMS)
    if not len(loud):
        raise ValueError("no speech in this audio")
    return float(loud[0] * MEDIA_FRAME_SECS), float((loud[-1] + 1) * MEDIA_FRAME_SECS)


@dataclass(frozen=True)
class Line:
    """One thing a simulated caller does: say ``pcm`` (8 kHz PCM16) or press ``digits``.

    For speech, ``words_start_secs`` and ``words_end_secs`` say where the words are in
    the clip: a reply's latency counts from the end of the words, not of the clip.
    """

    label: str
    pcm: bytes = b""
    words_start_secs: float = 0.0
    words_end_secs: float = 0.0
    digits: str = ""
    # Said this long after the bot's previous reply starts, over it, instead of after it ends.
    over_bot_after_secs: float | None = None

    @classmethod
    def speech(cls, label: str, pcm: bytes) -> "Line":
        """Words to say; a clip too quiet to find words in counts as words throughout."""
        try:
            start, end = words_span(pcm)
        except ValueError:
            start, end = 0.0, pcm16_secs(pcm)
        return cls(label, pcm, start, end)

    @classmethod
    def keys(cls, digits: str) -> "Line":
        return cls(f"[keys {digits}]", digits=digits)

    @classmethod
    def recorded(cls, name: str, *, from_secs: float = 0.0) -> "Line":
        """A recording from testkit/audio, optionally from ``from_secs`` on."""
        return cls.speech(name, read_wav_8k(AUDIO / f"{name}.wav")[pcm16_bytes(from_secs) :])
