"""The functions the LLM may call: built-in, declared over HTTP, written in Python."""
