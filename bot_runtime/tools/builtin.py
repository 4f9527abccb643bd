"""The functions the LLM may call: end the call, transfer it, and the business's own tools."""

from collections.abc import Callable

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.services.llm_service import FunctionCallParams

from bot_runtime.tools.specs import END_CALL, TRANSFER_CALL


def call_tools(
    *,
    end_call: Callable[[str], None],
    transfer_call: Callable[[str], None] | None,
    business: list[FunctionSchema],
) -> ToolsSchema:
    """The call-control tools, then the business's (agent file and agent_tools.py).

    ``transfer_call`` is offered only with somewhere to transfer to. Each action
    takes the reason to log; the LLM is not run again after either, since the
    call is ending.
    """
    tools = [
        _tool(
            END_CALL,
            "End the phone call. Call it when the caller says goodbye or has nothing "
            "more to ask. It says goodbye for you, so do not say goodbye yourself.",
            status="ending the call",
            action=end_call,
        )
    ]
    if transfer_call is not None:
        tools.append(
            _tool(
                TRANSFER_CALL,
                "Transfer the caller to a human colleague. Call it when the caller "
                "asks for a person, or when you cannot help them.",
                status="transferring",
                action=transfer_call,
            )
        )
    return ToolsSchema(standard_tools=tools + business)


def _tool(name: str, description: str, *, status: str, action: Callable[[str], None]):
    async def handler(params: FunctionCallParams) -> None:
        await params.result_callback(
            {"status": status}, properties=FunctionCallResultProperties(run_llm=False)
        )
        action(f"{name} tool")

    return FunctionSchema(
        name=name, description=description, properties={}, required=[], handler=handler
    )
