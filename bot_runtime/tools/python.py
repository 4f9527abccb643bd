"""Tools written in Python: ``@tool`` async functions in agent_tools.py, beside the agent file.

    from bot_runtime.python_tools import CallInfo, tool

    @tool(filler="One moment, let me look.")
    async def check_opening_hours(call: CallInfo, day: str) -> str:
        \"\"\"Tell when the shop opens on a day of the week.

        Args:
            day: The day the caller asked about, e.g. "Saturday".
        \"\"\"
        return HOURS.get(day.lower(), "closed")

The function's name, docstring and typed parameters are what the LLM is shown
(pipecat reads them, as for its own "direct functions"); ``call`` holds the
call's facts; what it returns is the tool's result, made JSON by ``json_safe``.
"""

import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pipecat.adapters.llm.schemas.direct_function import BaseDirectFunctionWrapper

from bot_runtime.tools.specs import (
    DEFAULT_TIMEOUT_SECS,
    MAX_TIMEOUT_SECS,
    RESERVED_TOOL_NAMES,
    CallInfo,
    PythonToolSpec,
)

__all__ = ["CallInfo", "PythonToolSpec", "load_python_tools", "tool"]

TOOLS_FILE = "agent_tools.py"
_MARK = "_agent_tool_options"


def tool(
    function: Callable[..., Awaitable[Any]] | None = None,
    *,
    filler: str | None = None,
    timeout_secs: float = DEFAULT_TIMEOUT_SECS,
) -> Any:
    """Offer an async function to the LLM as a tool, with or without options.

    ``filler`` is said to the caller if the function has not returned within a
    second; after ``timeout_secs`` it is given up and the LLM told it failed.
    """

    def mark(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        setattr(fn, _MARK, {"filler": filler, "timeout_secs": timeout_secs})
        return fn

    return mark(function) if function is not None else mark


class _CallToolWrapper(BaseDirectFunctionWrapper):
    """pipecat's reading of a function's signature and docstring, with ``call`` first."""

    @classmethod
    def special_first_param_name(cls) -> str:
        return "call"


def load_python_tools(
    directory: Path, *, problems: list[str], shown_as: str = TOOLS_FILE
) -> tuple[PythonToolSpec, ...]:
    """The ``@tool`` functions of ``directory/agent_tools.py`` (none without the file).

    Problems name the file ``shown_as``: its path as the user gave the agent file's.
    """
    path = directory / TOOLS_FILE
    if not path.is_file():
        return ()
    try:
        spec = importlib.util.spec_from_file_location("agent_tools", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # The user's code: any failure is a start-up problem to name.
        problems.append(f"{shown_as}: cannot import it: {type(error).__name__}: {error}")
        return ()
    tools = []
    for name, function in vars(module).items():
        options = getattr(function, _MARK, None)
        if options is None or getattr(function, "__module__", None) != module.__name__:
            continue
        where = f"{shown_as}: {name}"
        try:
            wrapper = _CallToolWrapper(function)
        except Exception as error:  # pipecat says what is wrong with the signature.
            problems.append(f"{where}: {error}")
            continue
        if not wrapper.description:
            problems.append(f"{where}: needs a docstring: the LLM decides by it when to call")
        if name in RESERVED_TOOL_NAMES:
            problems.append(f"{where}: {name!r} is the bot's own call-control tool")
        if not 0 < options["timeout_secs"] <= MAX_TIMEOUT_SECS:
            problems.append(
                f"{where}: timeout_secs must be over 0 and at most {MAX_TIMEOUT_SECS:g}"
            )
        tools.append(
            PythonToolSpec(
                name=name,
                description=wrapper.description,
                properties=wrapper.properties,
                required=tuple(wrapper.required),
                filler=options["filler"],
                timeout_secs=float(options["timeout_secs"]),
                function=function,
            )
        )
    return tuple(tools)
