"""The keyless local speech stack as pipecat services, on the models every call shares."""

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from types import SimpleNamespace
from typing import Any

from faster_whisper import WhisperModel
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pipecat.frames.frames import Frame, TranscriptionFrame
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator
from pipecat.utils.time import time_now_iso8601
from piper import PiperVoice

from bot_runtime.services.local_models import PIPER_VOICE, LocalLLM, transcribe_with
from bot_runtime.tools.specs import END_CALL
from bot_runtime.turns.farewell import is_farewell

# pipecat's end-of-turn logic waits this long, less the VAD's 0.2 s, for words that arrive
# after the turn they belong to was given up (a caller who paused mid-sentence). Whisper
# here takes well under this per utterance (docs/performance.md) and its transcripts are
# always final.
WHISPER_TTFS_P99_SECS = 0.6
# A clause this long (in words) is voiced on its own, without waiting for the sentence's end.
MIN_CLAUSE_WORDS = 4
# Only the caller's last words (all of them since the bot's last reply) go to SmolLM2,
# after the system prompt (which every call shares, so llama.cpp keeps it evaluated): the
# model makes little use of a history (it mostly repeats its own earlier replies), and each
# prompt token costs CPU before the first word of the reply (docs/performance.md).
SMOLLM2_HISTORY_MESSAGES = 1
MAX_REPLY_TOKENS = 40
# A sentence has ended when the next piece of text starts with a space.
_SENTENCE_END = re.compile(r"[.!?][\"')]*$")
# Sampling options that llama.cpp takes as the OpenAI API does; others (tools, service tier,
# stream options) mean nothing to SmolLM2, which cannot call functions.
LLAMA_OPTIONS = ("temperature", "top_p", "max_tokens", "seed", "stop")


def _prompt(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The system prompt and the caller's words since the bot last spoke, as plain text."""
    plain = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # Content parts: keep the text ones.
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        if message.get("role") in ("system", "user", "assistant") and content:
            plain.append({"role": message["role"], "content": content})
    system = [m for m in plain if m["role"] == "system"][:1]
    history = [m for m in plain if m["role"] != "system"][-SMOLLM2_HISTORY_MESSAGES:]
    if history and history[-1]["role"] == "user":
        history[-1] = {"role": "user", "content": _caller_words_since_reply(plain)}
    return system + history


def _caller_words_since_reply(messages: list[dict[str, Any]]) -> str:
    """The caller's messages after the bot's last reply, as one: a pause at a comma
    ("Thanks, goodbye.") can end a turn whose reply the caller's next words then cut off
    before it was heard, and the model must see the whole line, not its last part."""
    words: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            break
        if message.get("role") == "user":
            words.insert(0, str(message.get("content") or ""))
    return " ".join(words)


class _InProcessCompletions:
    """``chat.completions.create`` of AsyncOpenAI, answered by a LocalLLM.

    A streamed reply stops after its first sentence: SmolLM2 wanders (and contradicts
    itself) after that, and a short reply lets the voice start sooner. SmolLM2 cannot
    call functions; when the caller's last words are a clear goodbye, the answer is
    the ``end_call`` function call a cloud LLM would make, so the call ends the same
    way (the goodbye said, then the hang-up).
    """

    def __init__(self, llm: LocalLLM):
        self._llm = llm

    async def create(
        self, *, messages: list[dict[str, Any]], stream: bool = False, **params: Any
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        options = {
            name: params[name]
            for name in LLAMA_OPTIONS
            if isinstance(params.get(name), int | float | str | list)
        }
        if not stream:
            return ChatCompletion.model_validate(
                await self._llm.complete(_prompt(messages), **options)
            )
        if _offers_end_call(params.get("tools")) and _caller_said_goodbye(messages):
            return _end_call_chunks(self._llm.name)
        return self._chunks(_prompt(messages), options)

    async def _chunks(
        self, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        said = ""
        async for chunk in self._llm.stream(messages, **options):
            choices = chunk.get("choices") or [{}]
            text = choices[0].get("delta", {}).get("content") or ""
            if text[:1].isspace() and _SENTENCE_END.search(said):
                return
            said += text
            yield ChatCompletionChunk.model_validate(chunk)


def _offers_end_call(tools: Any) -> bool:
    return isinstance(tools, list) and any(
        isinstance(tool, dict) and tool.get("function", {}).get("name") == END_CALL
        for tool in tools
    )


def _caller_said_goodbye(messages: list[dict[str, Any]]) -> bool:
    last = messages[-1] if messages else {}
    return last.get("role") == "user" and is_farewell(_caller_words_since_reply(messages))


async def _end_call_chunks(model: str) -> AsyncGenerator[ChatCompletionChunk, None]:
    """The stream of an ``end_call`` function call, as the OpenAI API sends one."""
    call = {"index": 0, "id": "call_local_end", "type": "function"}
    call["function"] = {"name": END_CALL, "arguments": "{}"}
    deltas = [({"role": "assistant", "tool_calls": [call]}, None), ({}, "tool_calls")]
    for delta, finish_reason in deltas:
        yield ChatCompletionChunk.model_validate(
            {
                "id": "chatcmpl-local-end",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )


class LocalLLMService(OpenAILLMService):
    """pipecat's OpenAI LLM service, with SmolLM2 in this process in place of the API.

    Everything else (context, streaming to TTS, interruptions, metrics) is pipecat's
    own; only the client is replaced, by the one method of it the service uses.
    """

    def __init__(self, *, llm: LocalLLM, system_instruction: str, **kwargs: Any):
        self._local_llm = llm
        super().__init__(
            api_key="in-process",
            settings=OpenAILLMService.Settings(
                model=llm.name,
                system_instruction=system_instruction,
                max_tokens=MAX_REPLY_TOKENS,
                temperature=0.3,
            ),
            **kwargs,
        )

    def append_system_instruction(self, instruction: str) -> None:
        """Ignored: SmolLM2 gets the short system prompt alone (facts only delay its reply)."""

    def create_client(self, **_kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(
            chat=SimpleNamespace(completions=_InProcessCompletions(self._local_llm))
        )


class LocalWhisperSTTService(SegmentedSTTService):
    """Whisper on the shared model, one segment per caller utterance (cut by the VAD).

    pipecat's WhisperSTTService loads a model per instance (a call would wait for it)
    and decodes a 30 s window with a beam of five; see ``_transcribe`` for the faster
    decoding used here.
    """

    def __init__(self, *, model: WhisperModel, language: str = "en", **kwargs: Any):
        """``language``: the call's, as a Whisper code ("es"); Whisper base is multilingual."""
        super().__init__(
            settings=STTSettings(model="base", language=Language(language)),
            ttfs_p99_latency=WHISPER_TTFS_P99_SECS,
            **kwargs,
        )
        self._whisper = model
        self._whisper_language = language

    @property
    def wants_wav_segments(self) -> bool:
        return False  # Raw PCM16, read directly.

    def can_generate_metrics(self) -> bool:
        return True

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        await self.start_processing_metrics()
        text = await asyncio.to_thread(
            transcribe_with,
            self._whisper,
            audio,
            sample_rate=self.sample_rate,
            language=self._whisper_language,
        )
        await self.stop_processing_metrics()
        if text:
            # pipecat: private. The user id STTService keeps for its transcriptions (its own
            # segmented services read it the same way).
            yield TranscriptionFrame(
                text, self._user_id, time_now_iso8601(), Language(self._whisper_language)
            )


class LocalPiperTTSService(PiperTTSService):
    """pipecat's Piper service speaking with the shared voice, clause by clause."""

    def __init__(self, *, voice: PiperVoice, **kwargs: Any):
        # pipecat: skipped constructor. PiperTTSService's loads (or downloads) a voice for each
        # instance, so a call would wait for it: set up the TTSService part only, then the
        # one private field it sets, with the voice loaded at start-up.
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=PiperTTSService.Settings(model=None, voice=PIPER_VOICE, language=None),
            **kwargs,
        )
        self._voice = voice
        # pipecat: private. TTSService takes no aggregator of one's own; clauses need one.
        self._text_aggregator = _ClauseAggregator(language=self._text_aggregator.language)


class _ClauseAggregator(SimpleTextAggregator):
    """Sentences, and the clauses of long ones.

    Piper voices a piece of text only once it has all of it, and SmolLM2's first
    sentence is often long: voicing its first clause alone starts the reply about
    half a second sooner, and a comma is a pause in speech anyway.
    """

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        async for sentence in super().aggregate(text):
            yield sentence
        # pipecat: private. The text SimpleTextAggregator holds back, to cut a clause from.
        clause_end = self._text.find(", ")
        if clause_end > 0 and len(self._text[:clause_end].split()) >= MIN_CLAUSE_WORDS:
            clause, self._text = self._text[: clause_end + 1], self._text[clause_end + 2 :]
            yield Aggregation(text=clause.strip(), type=TextType.SENTENCE)
