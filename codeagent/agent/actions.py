"""Read a model reply as an answer or as actions, however the model offered its script.

Accepted forms, in this order: ``tool_use`` blocks (``execute_python``, or a tool called by name); with no
``tool_use``, a fenced ```` ```python ```` block in the text (CodeAct style); a JSON object naming a tool
(```` ```json ````, ``<tool_call>`` tags or bare), turned into a script that calls it; anything else with text
is the answer. A reply that is neither an answer nor an action gets a correction to send back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from codeagent.agent.prompt import EXECUTE_PYTHON

Source = Literal["tool_use", "fenced", "json"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_TRIPLE_QUOTED = re.compile(r'"""(.*?)"""', re.S)
_TOOL_CALL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.S)
_PYTHON_TAGS = ("python", "py", "python3", "ipython")
_ARGUMENT_KEYS = ("arguments", "parameters", "input", "args")

BAD_EXECUTE = 'execute_python needs {"code": "<python script>"}.'
#: The correction for an unknown tool names at most this many (every name would be 1,000 at scale).
MAX_NAMED_TOOLS = 10
NEITHER = (
    "Your reply had neither an answer nor a script. Either call the `execute_python` tool with a Python "
    "script that calls the functions, or reply with the final answer in plain text."
)


@dataclass
class Script:
    """A script to run. ``tool_use_ids`` answer with its output (several when one script was repeated)."""

    code: str
    source: Source
    tool_use_ids: list[str] = field(default_factory=list)
    note: str = ""  # said to the model with the output (how its reply was read)


@dataclass
class Reply:
    """A model reply, read: ``scripts`` and ``tool_uses`` (direct calls) to run, else ``answer``/``correction``."""

    text: str
    scripts: list[Script] = field(default_factory=list)
    tool_uses: list[Any] = field(default_factory=list)  # tool_use blocks for direct tools (or unknown names)
    correction: str = ""  # neither answer nor action: what to tell the model

    @property
    def is_action(self) -> bool:
        return bool(self.scripts or self.tool_uses)

    @property
    def via_tool_use(self) -> bool:
        """The actions came as tool_use blocks (answered with tool_result blocks, not a text message)."""
        return any(s.source == "tool_use" for s in self.scripts) or bool(self.tool_uses)


def read_reply(
    content: Iterable[Any],
    code_tools: Collection[str],
    direct_tools: Collection[str] = (),
    closest: Callable[[str, int], list[str]] | None = None,
) -> Reply:
    """Read ``content`` (SDK content blocks). ``code_tools``: names callable from a script; ``direct_tools``:
    names the model may call itself (answered as tool calls, not scripts); ``closest``: the tools that best
    match a name that does not exist (name, how many), for the correction (else it names the first tools)."""
    blocks = list(content)
    text = "".join(b.text for b in blocks if b.type == "text").strip()
    uses = [b for b in blocks if b.type == "tool_use"]
    if uses:
        return _from_tool_uses(text, uses, set(code_tools) - set(direct_tools))
    fenced = _fenced_python(text)
    if fenced:
        return Reply(text, scripts=[Script(fenced, "fenced")])
    calls, unknown = json_tool_calls(text, code_tools)
    if calls:
        return Reply(text, scripts=[_calls_script(calls)])
    if unknown == EXECUTE_PYTHON:
        return Reply(text, correction=BAD_EXECUTE)
    if unknown:
        return Reply(text, correction=unknown_tool_correction(unknown, code_tools, closest))
    if not _has_answer(text):
        return Reply(text, correction=NEITHER)
    return Reply(text)


def unknown_tool_correction(
    unknown: str, code_tools: Collection[str], closest: Callable[[str, int], list[str]] | None = None
) -> str:
    """What to tell a model that wrote a call to a tool that does not exist: how to run it, and a few names."""
    names = (closest(unknown, MAX_NAMED_TOOLS) if closest else sorted(code_tools))[:MAX_NAMED_TOOLS]
    if not names:
        listed = "(none)"
    elif len(names) == len(code_tools):
        listed = ", ".join(names)
    elif closest:
        listed = f"{', '.join(names)} (the closest of {len(code_tools)}; `search_tools(query)` finds others)"
    else:
        listed = f"{', '.join(names)} and {len(code_tools) - len(names)} more"
    return (
        f"There is no tool named {unknown[:80]!r}. Run Python with the `execute_python` tool; inside a script "
        f"you can call these functions: {listed}."
    )


def _from_tool_uses(text: str, uses: list[Any], code_tools: Collection[str]) -> Reply:
    reply = Reply(text)
    by_code: dict[str, Script] = {}
    for use in uses:
        if use.name == EXECUTE_PYTHON:
            code = use.input.get("code") if isinstance(use.input, dict) else None
            if not isinstance(code, str) or not code.strip():
                reply.tool_uses.append(use)  # answered with the usage error
                continue
            key = code.strip()
            if key in by_code:  # the same script offered twice in one reply: run it once
                by_code[key].tool_use_ids.append(use.id)
                continue
            script = by_code[key] = Script(code, "tool_use", [use.id])
            reply.scripts.append(script)
        elif use.name in code_tools and isinstance(use.input, dict):
            script = _calls_script([(use.name, use.input)])
            reply.scripts.append(Script(script.code, "tool_use", [use.id], script.note))
        else:
            reply.tool_uses.append(use)
    return reply


def _fenced_python(text: str) -> str:
    """The ```python blocks of ``text``, joined (an untagged block counts when it is not JSON)."""
    parts = []
    for tag, body in _FENCE.findall(text):
        tag = tag.lower()
        if tag in _PYTHON_TAGS or (not tag and body.strip() and not _is_json(body)):
            parts.append(body.strip("\n"))
    return "\n\n".join(p for p in parts if p.strip())


def _json_objects(text: str) -> list[Any]:
    """JSON values found in ``text``: fenced ```json blocks, <tool_call> tags, or the whole text."""
    candidates = list(_TOOL_CALL_TAG.findall(text))
    candidates += [body for tag, body in _FENCE.findall(text) if tag.lower() in ("json", "")]
    if not candidates:
        candidates = [text]
    found = []
    for candidate in candidates:
        found.extend(_decode_all(_triple_quotes_as_json(candidate.strip())))
    return found


def _triple_quotes_as_json(text: str) -> str:
    """Python's triple-quoted strings as JSON strings: small models write a script into JSON that way."""
    return _TRIPLE_QUOTED.sub(lambda m: json.dumps(m.group(1)), text) if '"""' in text else text


def _decode_all(text: str) -> list[Any]:
    """Every top-level JSON object in ``text`` (objects may follow one another, e.g. one per line)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return values
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        values.append(value)
        pos = end


def json_tool_calls(text: str, code_tools: Collection[str]) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """Tool calls written as JSON text: ``([(name, arguments)], first unknown name)``."""
    calls: list[tuple[str, dict[str, Any]]] = []
    unknown = None
    for value in _json_objects(text):
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            continue
        name = value["name"]
        arguments: dict[str, Any] = next((value[k] for k in _ARGUMENT_KEYS if isinstance(value.get(k), dict)), {})
        if (name == EXECUTE_PYTHON and isinstance(arguments.get("code"), str)) or name in code_tools:
            calls.append((name, arguments))
        elif unknown is None:
            unknown = name
    return calls, unknown


def _calls_script(calls: list[tuple[str, dict[str, Any]]]) -> Script:
    """One script for calls written as JSON: scripts run as they are, tool calls print their results."""
    lines = []
    for name, arguments in calls:
        if name == EXECUTE_PYTHON:
            lines.append(arguments["code"])
        else:
            call = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
            lines.append(f"print({call!r}, '->', repr({call}))")
    code = "\n".join(lines)
    if all(name == EXECUTE_PYTHON for name, _ in calls):
        return Script(code, "json", note="(Your reply wrote the tool call as JSON text; it ran as a script.)")
    return Script(
        code,
        "json",
        note=(
            "(Your reply wrote tool calls as JSON text. They ran as this Python script:\n"
            f"{code}\nNext time call `execute_python` with one script that does all the work.)"
        ),
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _has_answer(text: str) -> bool:
    """Text outside code blocks, or a JSON value (data, not a call); a lone shell or SQL block is not one."""
    if _FENCE.sub("", text).strip():
        return True
    return any(tag.lower() == "json" or _is_json(body) for tag, body in _FENCE.findall(text))
