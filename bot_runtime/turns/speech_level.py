"""How loud the caller speaks and which of their words count: what barge-in judges by."""

import numpy as np

# ITU-T P.56's nominal active speech level on a digital phone line (dBov): the caller's
# level until their own has been measured.
NOMINAL_SPEECH_DBFS = -26.0
# Frames quieter than this are the gaps between words, left out of a speech level.
SPEECH_FLOOR_DBFS = -50.0
# A level is the 80th percentile of the frame levels in speech: the body of the vowels,
# not the odd peak nor the quiet consonants.
LEVEL_PERCENTILE = 80
# Speech of the caller's own, measured while the bot was quiet, shorter than this is
# too little to take a level from.
MIN_LEVEL_SPEECH_SECS = 0.3
# The weight of a new turn's level in the caller's level (the rest is their earlier turns).
LEVEL_UPDATE_WEIGHT = 0.5
# What a listener says to show they are following, as Deepgram writes it (lower case, without
# punctuation): none of these alone means "stop". "Yes" and "no" count: they answer.
ACKNOWLEDGEMENTS = frozenset(
    [
        "mm",
        "mmm",
        "hmm",
        "mhm",
        "mhmm",
        "mmhmm",
        "mm-hm",
        "mm-hmm",
        "uh-huh",
        "uhhuh",
        "uh",
        "huh",
        "um",
        "ah",
        "oh",
        "aha",
        "okay",
        "ok",
        "kay",
        "yeah",
        "yep",
        "yup",
        "right",
        "sure",
        "alright",
    ]
)


def counted_words(text: str) -> int:
    """The words in a transcript that can cut the bot off: all but acknowledgements."""
    return sum(
        1 for word in text.lower().split() if word.strip(".,!?;:\"'") not in ACKNOWLEDGEMENTS
    )


def frame_dbfs(pcm16: bytes) -> float:
    """The RMS level of a stretch of 16-bit PCM, in dB below full scale (-100 for silence)."""
    samples = np.frombuffer(pcm16, dtype=np.int16).astype(np.float64)
    if not len(samples):
        return -100.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20 * np.log10(rms / 32768) if rms >= 1 else -100.0


def level_of(frame_levels: list[float] | np.ndarray) -> float | None:
    """The speech level of a run of frame levels (see ``LEVEL_PERCENTILE``), None if no speech."""
    levels = np.asarray(frame_levels, dtype=np.float64)
    speech = levels[levels >= SPEECH_FLOOR_DBFS]
    return float(np.percentile(speech, LEVEL_PERCENTILE)) if len(speech) else None


def speech_level_dbfs(pcm16: bytes, *, frame_secs: float = 0.02, sample_rate: int = 8000) -> float:
    """The speech level of a recording, measured as the bot measures a caller's."""
    step = 2 * round(frame_secs * sample_rate)
    levels = [frame_dbfs(pcm16[i : i + step]) for i in range(0, len(pcm16) - step + 1, step)]
    level = level_of(levels)
    if level is None:
        raise ValueError("no speech in this audio")
    return level


def tail_level(frames: list[tuple[float, float]], *, secs: float) -> float | None:
    """The speech level of the last ``secs`` of (level, length) frames, None if no speech."""
    window, total = [], 0.0
    for level, length in reversed(frames):
        if total >= secs:
            break
        window.append(level)
        total += length
    return level_of(window)


def learned_level(caller_level: float | None, speech: list[tuple[float, float]]) -> float | None:
    """The caller's level after one more turn of theirs, given as (level, length) frames.

    A turn too short to measure, or with no speech in it, leaves the level as it was.
    """
    if sum(secs for _, secs in speech) < MIN_LEVEL_SPEECH_SECS:
        return caller_level
    if (level := level_of([level for level, _ in speech])) is None:
        return caller_level
    if caller_level is None:
        return level
    return caller_level + LEVEL_UPDATE_WEIGHT * (level - caller_level)
