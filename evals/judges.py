"""The LLM behind a simulated caller and its judge: any OpenAI-compatible API, named in a scenario.

pipecat's harness builds the judge (``judge.eval``) and the simulated caller (``simulator``)
from a ``factory:`` dotted path, called with the block's mapping. This one takes ``model``, an
optional ``base_url`` (OpenAI's own API when absent: any server that speaks its Chat
Completions API, e.g. Groq, Together, a local vLLM or Ollama) and ``api_key_env``, the name of
the variable that holds its key (OPENAI_API_KEY when absent), so no key is ever in a file.
"""

import os
from typing import Any

from pipecat.services.openai.llm import OpenAILLMService


def openai_compatible(config: dict[str, Any]) -> OpenAILLMService:
    """An OpenAI-compatible LLM for the harness: ``model``, ``base_url``, ``api_key_env``."""
    model = config.get("model")
    if not model:
        raise ValueError("name the LLM's model: e.g. { factory: ..., model: gpt-4.1-mini }")
    key_variable = config.get("api_key_env", "OPENAI_API_KEY")
    api_key = os.environ.get(key_variable)
    if not api_key:
        raise ValueError(f"{key_variable} is not set: the LLM needs its key (see docs/evals.md)")
    return OpenAILLMService(
        api_key=api_key,
        base_url=config.get("base_url"),
        settings=OpenAILLMService.Settings(model=model),
    )
