"""Acme Shoes' Python tools: the opening hours, known without asking any server."""

from bot_runtime.python_tools import CallInfo, tool

OPENING_HOURS = {
    "monday": "9 am to 6 pm",
    "tuesday": "9 am to 6 pm",
    "wednesday": "9 am to 6 pm",
    "thursday": "9 am to 8 pm",
    "friday": "9 am to 8 pm",
    "saturday": "10 am to 4 pm",
    "sunday": "closed",
}


@tool
async def check_opening_hours(call: CallInfo, day: str) -> dict[str, str]:
    """Tell when the shop is open on a day of the week.

    Args:
        day: The day of the week the caller asked about, e.g. "Saturday".
    """
    hours = OPENING_HOURS.get(day.strip().lower())
    if hours is None:
        return {"error": f"{day!r} is not a day of the week"}
    return {"day": day, "hours": hours}
