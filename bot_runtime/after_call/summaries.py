"""What the LLM writes about a call: the brief for the person it is handed to, and the analysis."""

import asyncio
import json
from typing import Any

import jsonschema
from loguru import logger

from bot_runtime.config.agent_file import AnalysisSpec
from bot_runtime.config.settings import LOCAL, BotSettings
from bot_runtime.services.shared_clients import openai_client

# The brief is written while the caller hears "connecting you" and the hold tone; a slow
# LLM must not hold the transfer up for longer than that.
BRIEF_TIMEOUT_SECS = 3.0
# Whoever answers hears the brief before the caller: a sentence or two.
MAX_BRIEF_CHARS = 300
ANALYSIS_TIMEOUT_SECS = 30.0
BRIEF_INSTRUCTION = (
    "You help hand a phone call over to a human colleague. From the transcript, write one or "
    "two short sentences for them to hear before they are connected: who is calling if known, "
    "what the caller wants, and what was already done. Plain words, no lists, under 40 words."
)
ANALYSIS_INSTRUCTION = "You analyse a finished phone call from its transcript."


def transcript_text(transcript: list[dict[str, Any]]) -> str:
    """The transcript as lines for the LLM to read ("Caller: ...", "Agent: ...")."""
    lines = []
    for turn in transcript:
        who = "Caller" if turn["role"] == "caller" else "Agent"
        cut = " (cut off by the caller)" if turn["interrupted"] else ""
        lines.append(f"{who}: {turn['text']}{cut}")
    return "\n".join(lines)


async def transfer_brief(transcript: list[dict[str, Any]], *, settings: BotSettings) -> str:
    """A sentence or two for the person taking the call; plain facts if the LLM cannot help.

    Without a caller word there is nothing to summarise ("The caller asked for a
    person", as after keypad 0). The local LLM, or a failed or slow one, gives the
    caller's own last words instead: the brief is a courtesy, and nothing that goes
    wrong in writing it may cost the caller the transfer.
    """
    said = [turn["text"] for turn in transcript if turn["role"] == "caller"]
    if not said:
        return "The caller asked for a person."
    fallback = f"The caller said: {said[-1]}"[:MAX_BRIEF_CHARS]
    if settings.llm_provider == LOCAL:
        return fallback
    try:
        async with asyncio.timeout(BRIEF_TIMEOUT_SECS):
            brief = await _complete(
                settings,
                instruction=_in_operators_language(BRIEF_INSTRUCTION, settings=settings),
                transcript=transcript,
            )
        brief = " ".join(brief.split())[:MAX_BRIEF_CHARS]
    except Exception as error:  # A slow or failed LLM, or an answer of an unexpected shape.
        logger.warning(f"Transfer brief not written ({type(error).__name__}); sending the facts")
        return fallback
    return brief or fallback


async def analyse(
    transcript: list[dict[str, Any]], *, spec: AnalysisSpec, settings: BotSettings
) -> dict[str, Any]:
    """``{"summary", "fields"}`` filled by the LLM with structured output, checked against the
    agent file's fields; ``{"error"}`` (and the rest null) when the output does not fit or
    the LLM failed in any way (an empty ``choices`` among them)."""
    schema = analysis_schema(spec)
    try:
        async with asyncio.timeout(ANALYSIS_TIMEOUT_SECS):
            content = await _complete(
                settings,
                instruction=_in_operators_language(_analysis_instruction(spec), settings=settings),
                transcript=transcript,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "call_analysis", "strict": True, "schema": schema},
                },
            )
        analysis = json.loads(content)
        jsonschema.validate(analysis, schema)
    except Exception as error:  # A slow or failed LLM, an answer of any shape: never the record.
        problem = getattr(error, "message", None) or type(error).__name__
        logger.warning(f"Post-call analysis failed: {problem}")
        return {"summary": None, "fields": None, "error": f"analysis failed: {problem}"}
    return {"summary": analysis.get("summary"), "fields": analysis.get("fields")}


def analysis_schema(spec: AnalysisSpec) -> dict[str, Any]:
    """The JSON schema of the LLM's answer (structured outputs want every key required)."""
    properties: dict[str, Any] = {}
    if spec.summary:
        properties["summary"] = {"type": "string"}
    if spec.fields:
        properties["fields"] = {
            "type": "object",
            "properties": {name: dict(field) for name, field in spec.fields.items()},
            "required": list(spec.fields),
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _analysis_instruction(spec: AnalysisSpec) -> str:
    parts = [ANALYSIS_INSTRUCTION]
    if spec.summary:
        parts.append(f"The summary: {spec.summary}")
    if spec.fields:
        parts.append("Fill every field from what was said; each field's description says what.")
    return " ".join(parts)


def _in_operators_language(instruction: str, *, settings: BotSettings) -> str:
    """``instruction`` asking for the agent file's analysis_language, when it declares languages:
    the operator reads what the LLM writes, whatever language the caller spoke."""
    languages = settings.languages
    if not languages.declared:
        return instruction
    return (
        f"{instruction} Write in {languages.analysis_name}, whatever language the call was in "
        "(the fields' fixed choices stay as they are)."
    )


async def _complete(
    settings: BotSettings,
    *,
    instruction: str,
    transcript: list[dict[str, Any]],
    response_format: dict[str, Any] | None = None,
) -> str:
    """One completion from the call's LLM (the process's shared client), outside the pipeline."""
    client = openai_client(settings.openai_api_key or "not-needed", settings.openai_base_url)
    options = {"response_format": response_format} if response_format else {}
    response = await client.chat.completions.create(
        model=settings.openai_model,
        messages=[
            {"role": "system", "content": instruction},
            {"role": "user", "content": f"Transcript:\n{transcript_text(transcript)}"},
        ],
        **options,
    )
    return response.choices[0].message.content or ""
