"""Canary: every private pipecat name the runtime relies on, checked against the installed pipecat.

pipecat is pinned, but an upgrade may rename a private attribute or give a
constructor the runtime skips a new field; this fails naming the one that changed.
Each use in bot_runtime/ carries a "pipecat: private" or "pipecat: skipped
constructor" comment saying why the public API does not serve.
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.utils.base_object import BaseObject
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

import bot_runtime

# Every module of every sub-package (iter_modules would stop at the top and check nothing).
RUNTIME_MODULES = [
    importlib.import_module(module.name)
    for module in pkgutil.walk_packages(bot_runtime.__path__, "bot_runtime.")
]

# (pipecat class, private name, where the runtime uses it)
PRIVATE_NAMES = [
    (VADAnalyzer, "_vad_state", "turns.shared_models.SharedSileroVAD"),
    (VADAnalyzer, "_vad_stopping_count", "turns.shared_models.SharedSileroVAD.pause_secs"),
    (VADAnalyzer, "_run_analyzer", "turns.shared_models.SharedSileroVAD.analyze_audio"),
    (SileroVADAnalyzer, "_model", "turns.shared_models.SharedSileroVAD"),
    (SileroVADAnalyzer, "_windows_since_reset", "turns.shared_models.SharedSileroVAD"),
    (SileroVADAnalyzer, "_low_confidence_windows", "turns.shared_models.SharedSileroVAD"),
    (BaseSmartTurn, "_speech_triggered", "turns.shared_models.SharedSmartTurn.append_audio"),
    (BaseSmartTurn, "_audio_buffer", "turns.shared_models.SharedSmartTurn.append_audio"),
    (BaseSmartTurn, "_process_speech_segment", "turns.shared_models.SharedSmartTurn.append_audio"),
    (BaseSmartTurn, "_model_executor", "turns.shared_models.SharedSmartTurn._model_executor"),
    (BaseSmartTurn, "_clear", "turns.shared_models.SharedSmartTurn._clear"),
    (LocalSmartTurnAnalyzerV3, "_session", "turns.shared_models.SharedSmartTurn"),
    (LocalSmartTurnAnalyzerV3, "_log_data", "turns.shared_models.SharedSmartTurn"),
    (LocalSmartTurnAnalyzerV3, "_predict_endpoint", "turns.shared_models.prepare_models"),
    (TwilioFrameSerializer, "_hangup_attempted", "twilio_stream.GuardedTwilioSerializer"),
    (TwilioFrameSerializer, "_hang_up_call", "twilio_stream.GuardedTwilioSerializer"),
    (STTService, "_user_id", "local_services.LocalWhisperSTTService.run_stt"),
    (TTSService, "_text_aggregator", "local_services.LocalPiperTTSService"),
    (TTSService, "_text_aggregator", "first_phrase.CartesiaPhraseFirstTTS"),
    (PiperTTSService, "_voice", "local_services.LocalPiperTTSService"),
    (SimpleTextAggregator, "_text", "local_services._ClauseAggregator"),
    (DeepgramSTTService, "_on_message", "deepgram_stt.DeepgramSTT"),
    (DeepgramSTTService, "_connection", "deepgram_stt.DeepgramSTT"),
    (STTService, "_reconnect", "deepgram_stt.DeepgramSTT"),
    (BaseObject, "_register_event_handler", "deepgram_stt.DeepgramSTT"),
    (BaseObject, "_call_event_handler", "deepgram_stt.DeepgramSTT"),
    (STTService, "_finalize_pending", "deepgram_stt.DeepgramSTT._on_message"),
    (TurnAnalyzerUserTurnStopStrategy, "_text", "turn_end.TurnEnd.process_frame"),
    (
        TurnAnalyzerUserTurnStopStrategy,
        "_transcript_finalized",
        "turn_end.TurnEnd.process_frame and trigger_user_turn_stopped",
    ),
    (
        TurnAnalyzerUserTurnStopStrategy,
        "_maybe_trigger_user_turn_stopped",
        "turn_end.TurnEnd.process_frame",
    ),
    (TurnAnalyzerUserTurnStopStrategy, "_vad_stopped", "turn_end.TurnEnd._end_on_farewell"),
    (TurnAnalyzerUserTurnStopStrategy, "_turn_complete", "turn_end.TurnEnd._end_on_farewell"),
]

# Constructors the runtime skips (they load a model per call), and every field each one sets:
# the runtime's stand-in must set the same ones.
SKIPPED_CONSTRUCTORS = [
    (SileroOnnxModel, {"session", "sample_rates"}, "turns.shared_models._SileroState"),
    (
        SileroVADAnalyzer,
        {"_model", "_windows_since_reset", "_low_confidence_windows"},
        "turns.shared_models.SharedSileroVAD",
    ),
    (LocalSmartTurnAnalyzerV3, {"_session", "_log_data"}, "turns.shared_models.SharedSmartTurn"),
    (PiperTTSService, {"_voice"}, "local_services.LocalPiperTTSService"),
]


def class_source(cls: type) -> str:
    """The source of ``cls``, cut from its module's file.

    Read as text rather than with inspect.getsource, which parses the whole module
    with ast for a class (and CPython 3.11's ast sometimes fails late in a long run).
    """
    source = Path(inspect.getsourcefile(cls) or "").read_text()
    start = re.search(rf"^class {cls.__name__}\b.*$", source, re.MULTILINE)
    assert start is not None, f"class {cls.__name__} not found in its file"
    end = re.compile(r"^\S", re.MULTILINE).search(source, start.end())
    return source[start.start() : end.start() if end else len(source)]


def defines(cls: type, name: str) -> bool:
    """Whether ``cls`` (or a pipecat class it inherits from) still has ``name``."""
    if any(name in vars(klass) for klass in cls.__mro__):
        return True
    pattern = re.compile(rf"\bself\.{re.escape(name)}\b")
    return any(
        pattern.search(class_source(klass))
        for klass in cls.__mro__
        if klass.__module__.startswith("pipecat.")
    )


def fields_set_by(constructor) -> set[str]:
    """The ``self.NAME = ...`` (or ``self.NAME: T = ...``) assignments in a constructor."""
    assignment = re.compile(r"\bself\.(\w+)\s*(?::[^=\n]+)?=(?!=)")
    return set(assignment.findall(inspect.getsource(constructor)))


@pytest.mark.parametrize(("owner", "name", "used_by"), PRIVATE_NAMES)
def test_private_pipecat_names_the_runtime_uses_still_exist(owner, name, used_by):
    assert defines(owner, name), (
        f"pipecat's {owner.__name__} no longer has {name!r}, which bot_runtime.{used_by} "
        "relies on: find what replaced it in the installed pipecat and update the runtime"
    )


@pytest.mark.parametrize(("owner", "fields", "stand_in"), SKIPPED_CONSTRUCTORS)
def test_skipped_constructors_still_set_only_what_the_runtime_sets(owner, fields, stand_in):
    now = fields_set_by(owner.__init__)
    assert now == fields, (
        f"{owner.__name__}.__init__, which bot_runtime.{stand_in} skips, now sets "
        f"{sorted(now - fields)} and no longer sets {sorted(fields - now)}: set the same "
        "fields in the stand-in, then update this list"
    )


def test_every_private_pipecat_name_a_runtime_subclass_uses_is_listed():
    # A new private use without a canary entry is what this file exists to prevent.
    listed = {name for _, name, _ in PRIVATE_NAMES}
    for module in RUNTIME_MODULES:
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            pipecat_bases = [k for k in cls.__mro__[1:] if k.__module__.startswith("pipecat.")]
            for name in set(re.findall(r"\bself\.(_[a-z]\w*)", class_source(cls))):
                inherited = any(defines(base, name) for base in pipecat_bases)
                assert not inherited or name in listed, (
                    f"{cls.__qualname__} uses pipecat's private {name!r}: add it to "
                    "PRIVATE_NAMES, with a '# pipecat: private' comment on why, where it is used"
                )
