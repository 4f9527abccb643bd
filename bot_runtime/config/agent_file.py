"""The agent file (agent.toml): the business's own agent, described without touching code."""

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_runtime.config.languages import LANGUAGE_KEYS
from bot_runtime.tools.specs import (
    DEFAULT_TIMEOUT_SECS,
    MAX_TIMEOUT_SECS,
    RESERVED_TOOL_NAMES,
    HttpToolSpec,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AGENT_FILE = PROJECT_ROOT / "agent.toml"
# The texts an agent file may set; the environment variable of the same name, upper-cased,
# wins over the file (so one image can serve several numbers with different greetings).
TEXT_KEYS = ("system_prompt", "greeting", "goodbye", "silence_prompt", "voicemail_message")
LANGUAGE_SETTINGS = ("language", "analysis_language", "detect_language", "languages", "numbers")
TOP_LEVEL_KEYS = (*TEXT_KEYS, "tools", "analysis", *LANGUAGE_SETTINGS)
TOOL_KEYS = ("name", "description", "url", "method", "timeout_secs", "filler", "headers")
ANALYSIS_KEYS = ("summary", "fields")
PARAMETER_KEYS = ("type", "enum", "description", "required")
PARAMETER_TYPES = ("string", "number", "integer", "boolean")
# What OpenAI accepts as a function name.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class AnalysisSpec:
    """The [analysis] section: what the LLM fills in from the transcript after each call."""

    # The instruction for the summary ("In two sentences: ..."); None for no summary.
    summary: str | None
    # A JSON schema per field, as for tool parameters.
    fields: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class AgentFile:
    """What an agent file says; empty when there is none."""

    path: Path | None = None
    # The path as the user gave it (AGENT_FILE), for messages: "agent.toml" for the default.
    shown_as: str = "agent.toml"
    texts: Mapping[str, str] = field(default_factory=dict)
    tools: tuple[HttpToolSpec, ...] = ()
    # The @tool functions of agent_tools.py beside the file (see python_tools.py).
    python_tools: tuple[Any, ...] = ()
    analysis: AnalysisSpec | None = None
    # The languages, as written (config/languages.py checks and builds them).
    language: str | None = None
    analysis_language: str | None = None
    detect_language: bool = False
    # [languages.XX] tables: each one's texts, voice and model, checked to be strings.
    languages: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # [numbers]: called number -> language code, as written.
    numbers: Mapping[str, str] = field(default_factory=dict)


def read_agent_file(
    path: Path,
    *,
    env: Mapping[str, str],
    required: bool,
    problems: list[str],
    shown_as: str | None = None,
) -> AgentFile:
    """Read and check the agent file at ``path``, adding one line per problem to ``problems``.

    A missing file is no agent file (the defaults apply) unless ``required``: the
    user named it with AGENT_FILE. Problems name the file ``shown_as`` (its path as
    the user gave it; the file's name by default).
    """
    shown_as = shown_as or path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            problems.append(f"AGENT_FILE: {path} does not exist")
        return AgentFile()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        problems.append(f"{shown_as}: cannot read it: {error}")
        return AgentFile()
    checker = _Checker(shown_as, env, problems)
    checker.unknown_keys(data, TOP_LEVEL_KEYS, where="")
    texts = {key: value for key in TEXT_KEYS if (value := checker.text(data, key, where=""))}
    tools = tuple(checker.tools(data.get("tools", [])))
    analysis = checker.analysis(data["analysis"]) if "analysis" in data else None
    return AgentFile(
        path=path,
        shown_as=shown_as,
        texts=texts,
        tools=tools,
        analysis=analysis,
        language=checker.text(data, "language", where=""),
        analysis_language=checker.text(data, "analysis_language", where=""),
        detect_language=checker.flag(data, "detect_language", where=""),
        languages=checker.language_tables(data.get("languages", {})),
        numbers=checker.strings(data.get("numbers", {}), where="numbers"),
    )


class _Checker:
    """Checks the file's values, naming each problem with where it is."""

    def __init__(self, file_name: str, env: Mapping[str, str], problems: list[str]) -> None:
        self.file_name = file_name
        self.env = env
        self.problems = problems

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.file_name}: {where}{': ' if where else ''}{message}")

    def unknown_keys(self, table: Mapping[str, Any], known: tuple[str, ...], *, where: str) -> None:
        for key in table:
            if key not in known:
                self.problem(where, f"unknown key {key!r} (known: {', '.join(known)})")

    def text(self, table: Mapping[str, Any], key: str, *, where: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(where, f"{key!r} must be a non-empty string")
            return None
        return value.strip()

    def flag(self, table: Mapping[str, Any], key: str, *, where: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.problem(where, f"{key!r} must be true or false")
            return False
        return value

    def strings(self, table: Any, *, where: str) -> dict[str, str]:
        """A table of non-empty strings ([numbers]: number = "es")."""
        if not isinstance(table, dict):
            self.problem("", f"{where!r} must be a table ([{where}])")
            return {}
        found = {}
        for key in table:
            value = self.text(table, key, where=where)
            if value is not None:
                found[key] = value
        return found

    def language_tables(self, tables: Any) -> dict[str, dict[str, str]]:
        """The [languages.XX] tables: known keys, each a non-empty string."""
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            self.problem("", "'languages' must be tables ([languages.es], [languages.fr], ...)")
            return {}
        checked = {}
        for code, table in tables.items():
            where = f"languages.{code}"
            self.unknown_keys(table, LANGUAGE_KEYS, where=where)
            checked[code] = {
                key: value
                for key in LANGUAGE_KEYS
                if (value := self.text(table, key, where=where)) is not None
            }
        return checked

    def tools(self, tools: Any) -> list[HttpToolSpec]:
        if not isinstance(tools, list):
            self.problem("", "'tools' must be an array of tables ([[tools]])")
            return []
        specs, seen = [], set()
        for index, table in enumerate(tools):
            spec = self.tool(table, where=f"tools[{index}]")
            if spec is None:
                continue
            if spec.name in seen:
                self.problem(f"tools[{index}]", f"tool name {spec.name!r} is used twice")
                continue
            seen.add(spec.name)
            specs.append(spec)
        return specs

    def tool(self, table: Any, *, where: str) -> HttpToolSpec | None:
        if not isinstance(table, dict):
            self.problem(where, "must be a table")
            return None
        before = len(self.problems)
        name = self.text(table, "name", where=where)
        where = f"{where} ({name})" if name else where
        self.unknown_keys(table, (*TOOL_KEYS, "parameters"), where=where)
        self.tool_name(name, where=where)
        description = self.text(table, "description", where=where)
        if description is None:
            self.problem(where, "'description' is required: the LLM decides by it when to call")
        secrets: list[str] = []
        before_url = len(self.problems)
        url = self.filled(self.text(table, "url", where=where) or "", where, "url", secrets)
        # An unset ${NAME} in it is already said: its empty value would only repeat it.
        unfilled = len(self.problems) > before_url
        if not unfilled and not url.startswith(("http://", "https://")):
            self.problem(where, "'url' is required and must start with http:// or https://")
        method = str(table.get("method", "POST")).upper()
        if method not in ("GET", "POST"):
            self.problem(where, f"'method' must be GET or POST, got {table.get('method')!r}")
        headers = self.headers(table.get("headers", {}), where=where, secrets=secrets)
        properties, required = self.parameters(table.get("parameters", {}), where=where)
        if len(self.problems) > before:
            return None
        return HttpToolSpec(
            name=name or "",
            description=description or "",
            url=url,
            method=method,
            timeout_secs=self.timeout(table, where=where),
            filler=self.text(table, "filler", where=where),
            headers=headers,
            properties=properties,
            required=required,
            secrets=tuple(secrets),
        )

    def tool_name(self, name: str | None, *, where: str) -> None:
        if name is None:
            self.problem(where, "'name' is required")
        elif name in RESERVED_TOOL_NAMES:
            self.problem(where, f"{name!r} is the bot's own call-control tool: choose another")
        elif not _TOOL_NAME.fullmatch(name):
            self.problem(where, "'name' may hold only letters, digits, '_' and '-' (64 at most)")

    def timeout(self, table: Mapping[str, Any], *, where: str) -> float:
        value = table.get("timeout_secs", DEFAULT_TIMEOUT_SECS)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(where, f"'timeout_secs' must be a number, got {value!r}")
            return DEFAULT_TIMEOUT_SECS
        if not 0 < value <= MAX_TIMEOUT_SECS:
            self.problem(
                where, f"'timeout_secs' must be more than 0 and at most {MAX_TIMEOUT_SECS:g}"
            )
        return float(value)

    def headers(self, headers: Any, *, where: str, secrets: list[str]) -> dict[str, str]:
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            self.problem(where, "'headers' must be a table of strings")
            return {}
        return {
            name: self.filled(value, where, f"header {name}", secrets)
            for name, value in headers.items()
        }

    def filled(self, value: str, where: str, what: str, secrets: list[str]) -> str:
        """``value`` with each ${NAME} replaced from the environment (the values are secrets)."""

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if not self.env.get(name):
                self.problem(where, f"{what} uses ${{{name}}}, which is not set in the environment")
                return ""
            secrets.append(self.env[name])
            return self.env[name]

        return _ENV_REFERENCE.sub(fill, value)

    def analysis(self, table: Any) -> AnalysisSpec | None:
        if not isinstance(table, dict):
            self.problem("", "'analysis' must be a table ([analysis])")
            return None
        self.unknown_keys(table, ANALYSIS_KEYS, where="analysis")
        fields = table.get("fields", {})
        if not isinstance(fields, dict) or not all(isinstance(f, dict) for f in fields.values()):
            self.problem("analysis", "'fields' must be tables ([analysis.fields.NAME])")
            fields = {}
        summary = self.text(table, "summary", where="analysis")
        if summary is None and not fields:
            self.problem("analysis", "give a 'summary' instruction, fields, or both")
        schemas = {}
        for name, spec in fields.items():
            at = f"analysis field {name}"
            if not _PARAMETER_NAME.fullmatch(name):
                self.problem(at, "a name must be a letter or '_', then letters, digits or '_'")
            self.unknown_keys(spec, ("type", "enum", "description"), where=at)
            schemas[name] = self.parameter_schema(spec, where=at)
        return AnalysisSpec(summary=summary, fields=schemas)

    def parameters(self, parameters: Any, *, where: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        if not isinstance(parameters, dict):
            self.problem(where, "'parameters' must be a table of tables ([tools.parameters.NAME])")
            return {}, ()
        properties, required = {}, []
        for name, spec in parameters.items():
            at = f"{where} parameter {name}"
            if not _PARAMETER_NAME.fullmatch(name):
                self.problem(at, "a name must be a letter or '_', then letters, digits or '_'")
            elif not isinstance(spec, dict):
                self.problem(at, "must be a table with 'type' or 'enum'")
            else:
                self.unknown_keys(spec, PARAMETER_KEYS, where=at)
                properties[name] = self.parameter_schema(spec, where=at)
                if spec.get("required", False) is True:
                    required.append(name)
                elif not isinstance(spec.get("required", False), bool):
                    self.problem(at, "'required' must be true or false")
        return properties, tuple(required)

    def parameter_schema(self, spec: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        schema: dict[str, Any] = {}
        enum = spec.get("enum")
        kind = spec.get("type", "string" if enum is not None else None)
        if kind not in PARAMETER_TYPES:
            self.problem(
                where, f"'type' must be one of {', '.join(PARAMETER_TYPES)}, or give 'enum'"
            )
        else:
            schema["type"] = kind
        if enum is not None:
            if not isinstance(enum, list) or not enum or not all(isinstance(v, str) for v in enum):
                self.problem(where, "'enum' must be a non-empty list of strings")
            else:
                schema["enum"] = enum
        description = spec.get("description")
        if description is not None:
            if isinstance(description, str):
                schema["description"] = description
            else:
                self.problem(where, "'description' must be a string")
        return schema
