"""The VAD and end-of-turn models, loaded once per process and shared by every call.

pipecat's SileroVADAnalyzer and LocalSmartTurnAnalyzerV3 each load their ONNX model
when constructed, so a bot that builds them per call pays for a model load at the
start of every call, on the event loop, while other calls wait. Here the models are
loaded and run once when this module is imported (before the first call), and every
call gets light analyzers that keep only its own state and share the sessions.
ONNX Runtime sessions are safe to run from several threads at once.
"""

import asyncio
import os
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import onnxruntime as ort
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import STOP_SECS, BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.metrics.metrics import MetricsData
from threadpoolctl import threadpool_limits

from bot_runtime.phone_line import PHONE_SAMPLE_RATE

SILERO_MODEL = files("pipecat.audio.vad.data") / "silero_vad.onnx"
SMART_TURN_MODEL = files("pipecat.audio.turn.smart_turn.data") / "smart-turn-v3.2-cpu.onnx"
# The VAD hears the end of the words this much late: Silero's confidence trails them by two
# or three 32 ms windows, and the audio arrives in 40 ms frames (the average lag over the
# recorded test lines is in docs/performance.md). The VAD waits
# that much less, so the quiet after the caller's words is the end-of-turn wait they set.
SILERO_TRAIL_SECS = 0.08
# End-of-turn inference takes tens of milliseconds, more on a busy machine: start it once the
# caller has been quiet for two VAD windows, well before the stop is due.
SPECULATION_AFTER_SECS = 0.064
# A window this quiet (RMS below -70 dBFS: line silence, quieter than any voice) cannot
# start speech, so while the caller is quiet the VAD does not run its model on it. (At
# -60 dBFS it missed the faint start of some words and heard them late.)
SILENT_WINDOW_RMS = 32768 * 10 ** (-70 / 20)
# After its reset the model is run on this many silent windows (a quarter second), so that
# it meets the caller's next sound having heard quiet, as it would have scoring every window.
SETTLING_WINDOWS = 8
# However the end of a turn is judged, a turn that has words ends after this much quiet:
# smart-turn's own wait for a line that sounds unfinished.
TURN_END_FALLBACK_SECS = float(STOP_SECS)
# Smart-turn's features are small numpy matrix products. OpenBLAS splits each over every core
# and its idle threads then spin, which doubled the CPU of an end-of-turn inference (figures:
# docs/performance.md); one BLAS thread per process does the same work.
threadpool_limits(limits=1, user_api="blas")


def _session(model: Any, *, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads
    # Idle ONNX threads would otherwise spin, burning the CPU the calls need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


@cache
def silero_session() -> ort.InferenceSession:
    """The Silero VAD model, loaded once per process (a window is too small to split)."""
    return _session(SILERO_MODEL, threads=1)


@cache
def smart_turn_session() -> ort.InferenceSession:
    """The smart-turn v3 end-of-turn model, loaded once per process.

    One thread per inference: two made it quicker but cost more CPU in all (figures:
    docs/performance.md), and the inference starts early enough
    (``SPECULATION_AFTER_SECS``) to be done before the VAD's stop either way; the
    pool runs one inference per core.
    """
    return _session(SMART_TURN_MODEL, threads=1)


@cache
def smart_turn_threads() -> ThreadPoolExecutor:
    """Threads for end-of-turn inference, one per core, shared by all calls.

    One thread per call (pipecat's default) lets fifty calls' inferences fight over
    two cores at once; a pool as wide as the machine runs them in turn instead.
    """
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="smart-turn")


class _SileroState(SileroOnnxModel):
    """One call's Silero recurrent state, run on the shared session."""

    def __init__(self) -> None:
        # pipecat: skipped constructor. SileroOnnxModel's loads a model per call; this one
        # sets what it sets (tests/test_pipecat_internals.py checks the list) on the shared one.
        self.session = silero_session()
        self.sample_rates = [8000, 16000]
        self.reset_states()


class SharedSileroVAD(SileroVADAnalyzer):
    """Silero VAD for one call on the shared model, scored on the event loop.

    pipecat hands every 20 ms of audio to a thread of its own per call; scoring a
    32 ms window takes far less than the hand-off (and its context switches;
    docs/performance.md), so scoring inline costs the process less.

    While the caller is quiet, silent windows are mostly not scored: most of a call
    is the caller listening (about 4% of a call's CPU). When the quiet starts, the
    model is reset, as pipecat does every 2 s of quiet, and run on a few silent
    windows; then it rests until the next sound. Resetting there also keeps
    pipecat's periodic reset from falling on the first sound of the caller's next
    words. Windows during and just after speech are always scored, so when a turn
    ends is unchanged.
    """

    def __init__(self, *, params: VADParams | None = None) -> None:
        # pipecat: skipped constructor. SileroVADAnalyzer's loads the model per call; the
        # three private fields below are the ones it sets, used by its voice_confidence().
        VADAnalyzer.__init__(self, params=params)
        self._model = _SileroState()
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._silent_windows = 0

    @property
    def speaking(self) -> bool:
        """Whether the VAD hears the caller now (neither pausing nor stopped)."""
        # pipecat: private. VADAnalyzer has no public state between its frame results.
        return self._vad_state == VADState.SPEAKING

    @property
    def hears_voice(self) -> bool:
        """Whether the VAD hears voice now: from its first voiced window until its stop."""
        # pipecat: private, as above.
        return self._vad_state != VADState.QUIET

    @property
    def pause_secs(self) -> float:
        """How long the caller has been quiet while the VAD waits to call it a stop."""
        if self._vad_state != VADState.STOPPING:
            return 0.0
        # pipecat: private. How far into its stop time the VAD is, public nowhere.
        return self._vad_stopping_count * self.num_frames_required() / self.sample_rate

    async def analyze_audio(self, buffer: bytes) -> VADState:
        # pipecat: private. The public method runs the same analysis on a thread per call.
        return self._run_analyzer(buffer)

    def voice_confidence(self, buffer: bytes) -> float:
        if self._vad_state != VADState.QUIET or _rms(buffer) >= SILENT_WINDOW_RMS:
            self._silent_windows = 0
            return super().voice_confidence(buffer)
        if self._silent_windows == 0:
            # What pipecat does every 2 s of quiet (with its private counter): start afresh.
            self._model.reset_states()
            self._windows_since_reset = 0
        self._silent_windows += 1
        if self._silent_windows <= SETTLING_WINDOWS:
            return super().voice_confidence(buffer)
        return 0.0


def _rms(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.dot(samples, samples) / len(samples)))


class SharedSmartTurn(LocalSmartTurnAnalyzerV3):
    """Smart-turn v3 for one call: its own audio buffer, the shared model and threads.

    It also decides early. The VAD reports a stop only after ``stop_secs`` of
    quiet, and pipecat starts the inference then, so every answer waits
    for it. Here inference starts after ``SPECULATION_AFTER_SECS`` of quiet, before
    the stop is due, on the audio so far. If the caller stays quiet and the guess
    is "done", the answer is ready when the stop comes; if they speak again it is
    dropped; a guess of "not done" is checked again at the stop, as pipecat would.
    """

    def __init__(self, vad: SharedSileroVAD) -> None:
        # pipecat: skipped constructor. LocalSmartTurnAnalyzerV3's loads the model per call;
        # the two private fields it sets are set here, on the shared session.
        BaseSmartTurn.__init__(self)
        self._log_data = False
        self._session = smart_turn_session()
        self._vad = vad
        self._speculation: Future[tuple[EndOfTurnState, MetricsData | None]] | None = None

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        # pipecat: private. Where BaseSmartTurn runs inferences; no public way to share one.
        return smart_turn_threads()

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        state = super().append_audio(buffer, is_speech)
        if self._vad.speaking:
            self._speculation = None  # The caller spoke again: that guess no longer holds.
        # pipecat: private. BaseSmartTurn keeps the turn's audio and whether speech began
        # to itself; speculating needs both, and its per-segment inference.
        elif (
            self._speculation is None
            and self._speech_triggered
            and self._vad.pause_secs >= SPECULATION_AFTER_SECS
        ):
            self._speculation = self._model_executor.submit(
                self._process_speech_segment, list(self._audio_buffer)
            )
        return state

    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            state, result = await asyncio.wrap_future(speculation)
            if state == EndOfTurnState.COMPLETE:
                self._clear(state)
                return state, result
        # An early "not finished" is checked again on all the audio: on its own it would
        # keep the caller waiting for seconds (smart-turn's silence limit).
        return await super().analyze_end_of_turn()

    def _clear(self, turn_state: EndOfTurnState) -> None:
        # pipecat: private. BaseSmartTurn's end-of-turn reset, the one moment to drop a guess.
        super()._clear(turn_state)
        self._speculation = None


def prepare_models() -> None:
    """Load both models and run each once, so the first call is as quick as any other.

    ONNX Runtime's first run of a session allocates and plans; doing it here puts
    that cost at start-up instead of into the first caller's greeting and turn.
    """
    vad = SharedSileroVAD()
    vad.set_sample_rate(PHONE_SAMPLE_RATE)
    vad.voice_confidence(bytes(2 * vad.num_frames_required()))
    smart_turn = SharedSmartTurn(vad)
    smart_turn.set_sample_rate(PHONE_SAMPLE_RATE)
    # pipecat: private. The model's one inference, without a turn around it.
    smart_turn._predict_endpoint(np.zeros(PHONE_SAMPLE_RATE, dtype=np.float32))
