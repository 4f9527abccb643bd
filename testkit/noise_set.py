"""Noises on a caller's line, made from synthesis and mixing: `python -m testkit.noise_set`.

Each noise is 8 kHz mu-law, as Twilio sends the caller's audio, in testkit/audio/noise/
(`NAME.ulaw`, headerless; play with `sox -t ul -r 8000 NAME.ulaw -d`). Levels are set
against the recorded caller lines' speech level (measured as the bot measures a
caller's). Building needs sox and espeak-ng; using the files needs neither.
"""

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot_runtime.turns.speech_level import speech_level_dbfs
from testkit.caller_audio import AUDIO
from testkit.phone_audio import pcm16_to_ulaw, read_wav_8k, ulaw_to_pcm16

NOISE_DIR = AUDIO / "noise"
RATE = 8000
CALLER_LINES = ["saturday", "order_status", "order_number", "agree", "human", "goodbye", "long"]


@dataclass(frozen=True)
class Noise:
    """One sound on the line, what Deepgram would make of it, and how it was made."""

    name: str
    # What speech-to-text hears in it: "" for sound that is not words.
    heard: str
    # Its level against the caller's speech level, in dB.
    level_db: float
    # Continuous sound that can lie under a caller's words (babble, TV, street, hiss).
    background: bool
    how: str

    @property
    def path(self) -> Path:
        return NOISE_DIR / f"{self.name}.ulaw"

    def pcm(self) -> bytes:
        """The noise as 8 kHz PCM16."""
        return ulaw_to_pcm16(self.path.read_bytes())


NOISES = [
    Noise(
        "cough",
        "",
        0.0,
        False,
        "two bursts of pink noise (0.2 s, 0.15 s) band-passed around 1.2 kHz with a fast attack "
        "and slow decay, 0.12 s apart (sox synth)",
    ),
    Noise(
        "knock",
        "",
        0.0,
        False,
        "three 40 ms bursts of brown noise low-passed at 700 Hz, 0.22 s apart, a knuckle on "
        "wood (sox synth)",
    ),
    Noise(
        "door_slam",
        "",
        4.0,
        False,
        "a 120 ms brown-noise thump low-passed at 400 Hz with a room's reverb tail (sox synth, "
        "reverb)",
    ),
    Noise(
        "laugh",
        "",
        0.0,
        False,
        'espeak-ng "ha ha ha ha" at a raised pitch and speed, with tremolo: a short laugh '
        "(Deepgram transcribes no words for laughter)",
    ),
    Noise(
        "mm_hm",
        "Mm-hmm.",
        0.0,
        False,
        'espeak-ng "mm hmm", the caller\'s acknowledgement while the bot talks',
    ),
    Noise(
        "okay",
        "Okay.",
        0.0,
        False,
        'espeak-ng "okay", the caller\'s acknowledgement while the bot talks',
    ),
    Noise(
        "babble",
        "I know, right.",
        -12.0,
        True,
        "four espeak-ng voices (en-us, en-gb, en-029, en-gb-scotland; different pitches and "
        "speeds) each saying different sentences, mixed: voices in the room",
    ),
    Noise(
        "tv",
        "And now the weather for the weekend.",
        -12.0,
        True,
        "an espeak-ng newsreader (en-gb-x-rp) band-passed 300-3400 Hz with reverb: a TV or radio "
        "across the room",
    ),
    Noise(
        "street",
        "",
        -15.0,
        True,
        "brown noise low-passed at 1 kHz (traffic rumble) with two passing cars (pink noise "
        "low-passed at 1.5 kHz, faded in and out)",
    ),
    Noise("hiss", "", -35.0, True, "white noise high-passed at 300 Hz: line hiss (sox synth)"),
]
BY_NAME = {noise.name: noise for noise in NOISES}
BACKGROUNDS = [noise for noise in NOISES if noise.background]


def caller_speech_level() -> float:
    """The recorded caller lines' speech level (dBFS), the reference for every noise."""
    pcm = b"".join(read_wav_8k(AUDIO / f"{name}.wav") for name in CALLER_LINES)
    return speech_level_dbfs(pcm)


def under(words: bytes, background: Noise) -> bytes:
    """A caller line with a background noise (looped to its length) under it, as PCM16."""
    speech = np.frombuffer(words, dtype=np.int16).astype(np.int32)
    noise = np.frombuffer(background.pcm(), dtype=np.int16).astype(np.int32)
    noise = np.resize(noise, len(speech))
    return np.clip(speech + noise, -32768, 32767).astype(np.int16).tobytes()


# --- building the files (sox and espeak-ng) ------------------------------------------


def _sox(*args: str | Path) -> None:
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True)


def _synth(path: Path, secs: float, *effects: str) -> Path:
    _sox("-n", "-r", RATE, "-c", 1, "-b", 16, path, "synth", secs, *effects)
    return path


def _speak(path: Path, text: str, *, voice: str, pitch: int = 50, speed: int = 160) -> Path:
    raw = path.with_suffix(".22k.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    _sox(raw, "-r", RATE, "-c", 1, "-b", 16, path)
    return path


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float64)


def _silence(secs: float) -> np.ndarray:
    return np.zeros(round(secs * RATE))


def _mix(*tracks: np.ndarray) -> np.ndarray:
    out = np.zeros(max(len(t) for t in tracks))
    for track in tracks:
        out[: len(track)] += track
    return out


def _at_level(samples: np.ndarray, dbfs: float, *, speech_like: bool) -> np.ndarray:
    """Scale to a level: by the loud frames (see ``speech_level_dbfs``) or by the RMS."""
    pcm = np.clip(samples, -32768, 32767).astype(np.int16).tobytes()
    if speech_like:
        now = speech_level_dbfs(pcm)
    else:
        now = 20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768)
    return samples * 10 ** ((dbfs - now) / 20)


def _cough(f: Path, tmp: Path) -> np.ndarray:
    a = _read(_synth(f, 0.2, "pinknoise", "sinc", "600-2500", "fade", "q", "0.01", "0.2", "0.15"))
    b = _read(
        _synth(
            tmp / "c2.wav",
            0.15,
            "pinknoise",
            "sinc",
            "500-2200",
            "fade",
            "q",
            "0.01",
            "0.15",
            "0.12",
        )
    )
    return np.concatenate([a, _silence(0.12), b * 0.8])


def _knock(f: Path, tmp: Path) -> np.ndarray:
    k = _read(_synth(f, 0.04, "brownnoise", "lowpass", "700", "fade", "0", "0.04", "0.035"))
    return np.concatenate([k, _silence(0.22), k * 0.9, _silence(0.22), k * 0.8])


def _door_slam(f: Path, tmp: Path) -> np.ndarray:
    thump = _synth(f, 0.12, "brownnoise", "lowpass", "400", "fade", "0", "0.12", "0.1")
    slam = tmp / "slam.wav"
    _sox(thump, slam, "pad", "0", "0.6", "reverb", "60", "50", "80")
    return _read(slam)


def _laugh(f: Path, tmp: Path) -> np.ndarray:
    _speak(f, "ha ha ha ha", voice="en-us", pitch=80, speed=230)
    wobbly = tmp / "laugh2.wav"
    _sox(f, wobbly, "tremolo", "9", "60")
    return _read(wobbly)


def _mm_hm(f: Path, tmp: Path) -> np.ndarray:
    return _read(_speak(f, "mm hmm", voice="en-us", speed=140))


def _okay(f: Path, tmp: Path) -> np.ndarray:
    return _read(_speak(f, "okay", voice="en-us", speed=150))


def _babble(f: Path, tmp: Path) -> np.ndarray:
    voices = [
        (
            "en-us",
            35,
            150,
            "I told him we would be there by six but the traffic was terrible.",
        ),
        ("en-gb", 70, 170, "Did you see the game last night, it went on forever."),
        ("en-029", 50, 140, "We need more milk and bread, and maybe some coffee too."),
        ("en-gb-scotland", 25, 160, "She said the meeting moved to Thursday afternoon."),
    ]
    tracks = [
        np.concatenate(
            [
                _silence(0.3 * i),
                _read(_speak(tmp / f"v{i}.wav", text, voice=v, pitch=p, speed=s)),
            ]
        )
        for i, (v, p, s, text) in enumerate(voices)
    ]
    return _mix(*tracks)[: 4 * RATE]


def _tv(f: Path, tmp: Path) -> np.ndarray:
    voice = _speak(
        tmp / "news.wav",
        "And now the weather for the weekend, with sunshine in the south and showers "
        "spreading from the north by Sunday evening.",
        voice="en-gb-x-rp",
        speed=165,
    )
    _sox(voice, f, "sinc", "300-3400", "reverb", "40")
    return _read(f)[: 4 * RATE]


def _street(f: Path, tmp: Path) -> np.ndarray:
    rumble = _read(_synth(f, 4.0, "brownnoise", "lowpass", "1000"))
    car = _read(
        _synth(
            tmp / "car.wav",
            1.6,
            "pinknoise",
            "lowpass",
            "1500",
            "fade",
            "t",
            "0.8",
            "1.6",
            "0.8",
        )
    )
    cars = _mix(np.concatenate([_silence(0.5), car * 3]), np.concatenate([_silence(2.2), car * 2]))
    return _mix(rumble, cars)


def _hiss(f: Path, tmp: Path) -> np.ndarray:
    return _read(_synth(f, 4.0, "whitenoise", "highpass", "300"))


# How each noise is made: ``f`` is its own scratch file, ``tmp`` the scratch directory.
_RECIPES = {
    "cough": _cough,
    "knock": _knock,
    "door_slam": _door_slam,
    "laugh": _laugh,
    "mm_hm": _mm_hm,
    "okay": _okay,
    "babble": _babble,
    "tv": _tv,
    "street": _street,
    "hiss": _hiss,
}


def build() -> None:
    """Make every noise, at its level against the caller lines, into testkit/audio/noise."""
    reference = caller_speech_level()
    NOISE_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for noise in NOISES:
            samples = _RECIPES[noise.name](Path(tmp) / f"{noise.name}.wav", Path(tmp))
            level = reference + noise.level_db
            # Steady noise is set by its RMS; voices and bangs by their loud frames.
            steady = noise.name in ("street", "hiss")
            scaled = _at_level(samples, level, speech_like=not steady)
            pcm = np.clip(scaled, -32768, 32767).astype(np.int16).tobytes()
            noise.path.write_bytes(pcm16_to_ulaw(pcm))
            print(f"{noise.name:10} {len(pcm) / 2 / RATE:4.1f} s  {level:6.1f} dBFS")
    print(f"caller speech level {reference:.1f} dBFS")


if __name__ == "__main__":
    build()
