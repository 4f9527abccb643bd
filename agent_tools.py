"""Your own tools, written in Python: each `@tool` async function here is offered to the LLM.

The function's name, docstring (with an Args section) and typed parameters are what
the LLM sees; its first parameter, `call`, holds the call's facts (call_sid,
direction, from_number, to_number, parameters); what it returns goes back to the
LLM, which answers the caller. Anything it raises, or a timeout, becomes a short
"it failed" for the LLM to pass on. A worked example: examples/order_desk/agent_tools.py.

    from bot_runtime.python_tools import CallInfo, tool

    @tool(filler="One moment.", timeout_secs=3)
    async def check_opening_hours(call: CallInfo, day: str) -> str:
        \"\"\"Tell when the shop opens on a day of the week.

        Args:
            day: The day the caller asked about, e.g. "Saturday".
        \"\"\"
        ...

Use async libraries for I/O (aiohttp, asyncpg, ...): a blocking call here would stall
every call on this process.
"""
