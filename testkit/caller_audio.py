"""The recorded caller lines in tests/audio that simulated callers say."""

from pathlib import Path

import numpy as np

AUDIO = Path(__file__).resolve().parent / "audio"
# A 20 ms frame at or above this RMS (about -50 dBFS) is speech: where the words are inside a
# recording that has a little silence before and after them.
SPEECH_RMS = 100
SPEECH_FRAME_SAMPLES = 160  # 20 ms at 8 kHz


def caller_line(name: str) -> str:
    """The words spoken in ``AUDIO / f"{name}.wav"``, from lines.txt."""
    for line in (AUDIO / "lines.txt").read_text().splitlines():
        key, _, text = line.partition("|")
        if key == name:
            return text
    raise KeyError(name)


def words_span(pcm: bytes) -> tuple[float, float]:
    """Where the words start and end in 8 kHz PCM16, in seconds, to the 20 ms frame."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    frames = samples[: len(samples) // SPEECH_FRAME_SAMPLES * SPEECH_FRAME_SAMPLES]
    rms = np.sqrt(np.mean(frames.reshape(-1, SPEECH_FRAME_SAMPLES) ** 2, axis=1))
    loud = np.flatnonzero(rms >= SPEECH_RMS)
    if not len(loud):
        raise ValueError("no speech in this audio")
    frame_secs = SPEECH_FRAME_SAMPLES / 8000
    return float(loud[0] * frame_secs), float((loud[-1] + 1) * frame_secs)
