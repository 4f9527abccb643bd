"""Phone audio as Twilio carries it: 8 kHz mu-law in 20 ms media frames, and 8 kHz WAVs."""

import warnings
import wave
from pathlib import Path

from bot_runtime.phone_line import PHONE_SAMPLE_RATE

with warnings.catch_warnings():
    # Deprecated on 3.11-3.12; on 3.13+ pipecat installs audioop-lts under the same name.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

# Twilio sends the caller's audio as one 20 ms media message after another.
MEDIA_FRAME_SECS = 0.02
MEDIA_FRAME_BYTES = round(PHONE_SAMPLE_RATE * MEDIA_FRAME_SECS)  # mu-law: one byte a sample
ULAW_SILENCE = b"\xff" * MEDIA_FRAME_BYTES
# Bot audio quieter than this (RMS of 16-bit samples, about -66 dBFS) is silence, not speech.
QUIET_RMS = 16


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit little-endian PCM as G.711 mu-law."""
    return audioop.lin2ulaw(pcm, 2)


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode G.711 mu-law to 16-bit little-endian PCM."""
    return audioop.ulaw2lin(ulaw, 2)


def pcm16_secs(pcm: bytes) -> float:
    """How long 8 kHz PCM16 plays."""
    return len(pcm) / 2 / PHONE_SAMPLE_RATE


def pcm16_bytes(secs: float) -> int:
    """How many bytes of 8 kHz PCM16 play for ``secs`` (whole samples)."""
    return max(0, round(secs * PHONE_SAMPLE_RATE)) * 2


def ulaw_frames(pcm: bytes) -> list[bytes]:
    """8 kHz PCM16 as the media payloads a caller sends, the last one padded with silence."""
    ulaw = pcm16_to_ulaw(pcm)
    return [
        ulaw[i : i + MEDIA_FRAME_BYTES].ljust(MEDIA_FRAME_BYTES, b"\xff")
        for i in range(0, len(ulaw), MEDIA_FRAME_BYTES)
    ]


def stereo_to_mono(pcm: bytes) -> bytes:
    """Interleaved stereo PCM16 as mono, both channels mixed equally."""
    return audioop.tomono(pcm, 2, 0.5, 0.5)


def is_quiet(pcm: bytes) -> bool:
    """Whether a stretch of PCM16 is too quiet to be speech."""
    return audioop.rms(pcm, 2) < QUIET_RMS


def read_wav_8k(path: str | Path) -> bytes:
    """Return the PCM of an 8 kHz mono 16-bit WAV, refusing any other format.

    Resampling here would hide a test-data mistake, so other formats are an error.
    """
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        if (rate, channels, width) != (PHONE_SAMPLE_RATE, 1, 2):
            raise ValueError(
                f"{path}: need an {PHONE_SAMPLE_RATE} Hz mono 16-bit WAV, "
                f"got {rate} Hz, {channels} channel(s), {8 * width}-bit"
            )
        return wav.readframes(wav.getnframes())


def write_stereo_wav(path: str | Path, *, left: bytes, right: bytes) -> None:
    """Write two 8 kHz PCM16 tracks side by side, the shorter padded with silence."""
    length = max(len(left), len(right))
    left, right = left.ljust(length, b"\x00"), right.ljust(length, b"\x00")
    stereo = audioop.add(audioop.tostereo(left, 2, 1, 0), audioop.tostereo(right, 2, 0, 1), 2)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(PHONE_SAMPLE_RATE)
        wav.writeframes(stereo)
