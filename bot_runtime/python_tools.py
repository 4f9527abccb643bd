"""The public name for tools written in Python: ``from bot_runtime.python_tools import tool``.

The tools themselves live in bot_runtime/tools/python.py; see it for how to write one.
"""

from bot_runtime.tools.python import CallInfo, PythonToolSpec, load_python_tools, tool

__all__ = ["CallInfo", "PythonToolSpec", "load_python_tools", "tool"]
