"""The business's own tools on a call: arguments checked, a filler if slow, an answer always."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jsonschema
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.services.llm_service import FunctionCallParams

from bot_runtime.call.record import CallRecord
from bot_runtime.json_safe import json_safe
from bot_runtime.tools.http import call_http_tool
from bot_runtime.tools.specs import CallInfo, HttpToolSpec, ToolFailed, ToolSpec

# A tool that has not answered by then gets its filler said, so the caller knows to wait.
FILLER_AFTER_SECS = 1.0


def business_tool_schemas(
    specs: list[ToolSpec], *, call_info: Callable[[], CallInfo], record: CallRecord
) -> list[FunctionSchema]:
    """The tools as the LLM is shown them, each with the handler that runs it."""
    return [
        FunctionSchema(
            name=spec.name,
            description=spec.description,
            properties=dict(spec.properties),
            required=list(spec.required),
            handler=_Handler(spec, call_info=call_info, record=record),
        )
        for spec in specs
    ]


class _Handler:
    """Runs one tool for the LLM; whatever happens, the LLM gets a result to answer with.

    A failure (bad arguments, timeout, refused connection, an error status or an
    unreadable answer, an exception in Python) becomes a short error result, so
    the LLM tells the caller rather than leaving them in silence.
    """

    def __init__(
        self, spec: ToolSpec, *, call_info: Callable[[], CallInfo], record: CallRecord
    ) -> None:
        self._spec = spec
        self._call_info = call_info
        self._record = record
        self._validator = jsonschema.Draft202012Validator(
            {
                "type": "object",
                "properties": dict(spec.properties),
                "required": list(spec.required),
                "additionalProperties": False,
            }
        )

    async def __call__(self, params: FunctionCallParams) -> None:
        started = time.monotonic()
        arguments = dict(params.arguments)
        try:
            self._check(arguments)
            # JSON before anything else sees it: pipecat's context and the record are JSON.
            result = json_safe(await self._run_with_filler(arguments, params))
        except ToolFailed as failure:
            ms = round((time.monotonic() - started) * 1000)
            logger.warning(f"Tool {self._spec.name} failed after {ms} ms: {failure}")
            self._record.add_tool_call(self._spec.name, arguments, error=str(failure), ms=ms)
            error = (
                f"{self._spec.name} failed: {failure}. Tell the caller it could not be done now."
            )
            await params.result_callback({"error": error})
            return
        ms = round((time.monotonic() - started) * 1000)
        logger.info(f"Tool {self._spec.name} answered in {ms} ms")
        self._record.add_tool_call(self._spec.name, arguments, result=result, ms=ms)
        await params.result_callback(result)

    def _check(self, arguments: dict[str, Any]) -> None:
        problems = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        if problems:
            where = ".".join(str(p) for p in problems[0].path) or "arguments"
            raise ToolFailed(f"invalid arguments ({where}: {problems[0].message})")

    async def _run_with_filler(self, arguments: dict[str, Any], params: FunctionCallParams) -> Any:
        filler = asyncio.ensure_future(self._say_filler(params)) if self._spec.filler else None
        try:
            return await self._run(arguments)
        finally:
            if filler is not None:
                filler.cancel()

    async def _say_filler(self, params: FunctionCallParams) -> None:
        await asyncio.sleep(FILLER_AFTER_SECS)
        # Kept out of the LLM's context: said while the tool works, it would read as the
        # bot's last word after the tool's result.
        await params.llm.push_frame(TTSSpeakFrame(self._spec.filler, append_to_context=False))

    async def _run(self, arguments: dict[str, Any]) -> Any:
        spec = self._spec
        if isinstance(spec, HttpToolSpec):
            return await call_http_tool(spec, arguments, self._call_info())
        try:
            async with asyncio.timeout(spec.timeout_secs):
                result = await spec.function(self._call_info(), **arguments)
        except TimeoutError:
            raise ToolFailed(f"no answer within {spec.timeout_secs:g} s") from None
        except Exception as error:  # The business's code: report it, keep the call going.
            logger.warning(f"Tool {spec.name} raised {type(error).__name__}: {error}")
            raise ToolFailed(f"it raised {type(error).__name__}") from None
        return {"status": "done"} if result is None else result
