"""The system prompt and the one client tool the model acts through."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from anthropic.types import ToolParam, ToolSearchToolBm25_20251119Param, ToolUnionParam

from codeagent.tools.approval import Approvals, rule_for
from codeagent.tools.registry import Tool
from codeagent.tools.render import estimate_tokens, render_tools

EXECUTE_PYTHON = "execute_python"

EXECUTE_PYTHON_TOOL: ToolParam = {
    "name": EXECUTE_PYTHON,
    "description": (
        "Run a Python script in the sandboxed kernel. The tool functions listed in the system prompt are "
        "already defined there. Returns only what the script prints (and the repr of a final expression), "
        "or the traceback if it fails. Variables persist between scripts."
    ),
    "input_schema": {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python script to run."}},
        "required": ["code"],
    },
}

HOW_TO_WORK = """\
You answer questions inside a Jupyter notebook by writing Python. Use the `execute_python` tool to run a \
script in a sandboxed Python kernel (no network, no files outside its working directory, no installs). \
{tools_section}
{data_section}
How to work:
- Prefer ONE script that does all the work: call the functions, loop over results, filter and aggregate in \
Python. Calls are cheap; your context is not.
- Only what the script prints (and the value of its last expression) comes back to you. Print only what the \
answer needs: totals, the few matching rows, short summaries. Never print raw tool results in bulk.
{notes}- If a script fails you will see the traceback; fix the script and run it again. Variables persist between \
scripts.
- When you have what you need, reply with the answer in concise Markdown, without calling the tool again.
"""


ASYNC_NOTE = """\
- Each function also has an async form, `name.aio(...)`, taking the same arguments and returning an awaitable. \
To make many calls at once, use top-level await: `rows = await asyncio.gather(*[get_x.aio(i) for i in ids])`. \
A plain `name(...)` call blocks and returns the value, in any script.
- Functions take and return JSON-like data, NumPy arrays, pandas DataFrames and Arrow tables.
"""

LISTED_TOOLS = """\
These functions are already defined in that kernel; call them directly, do not import or redefine them:

```python
{stubs}
```"""

SEARCHED_TOOLS = """\
{count} tools are already defined in that kernel, too many to list here. Find them with \
`search_tools(query, k=5)`: it returns the stubs (signature, docstring, return type) of the best matches, and \
every tool it shows is callable exactly as shown; `describe_tool(name)` returns one tool's stub. Search, read \
and call in one script when you can, e.g. `print(search_tools("refund a payment"))`, then call what you found \
in the next script. Do not import or redefine the tools. The tool sources:

{sources}
"""

RESULT_NOTE = """\
- `set_result(value)` is also defined: it hands `value` (JSON-like data, a NumPy array, a pandas DataFrame or \
Series, or an Arrow table) back to the user's notebook as the result. Use it when the user asks for data (a \
table, a list, an array) rather than only an answer; the last call wins.
"""


APPROVAL_NOTE = """\
- Each call of {names} pauses the script until the user approves it. A denied call raises `ToolDenied` (a \
`PermissionError`) saying why: do not retry it; carry on without it, or say what you needed.
"""

TOOL_LIMIT_NOTE = """\
- This question may make at most {limit} tool call(s) in all; past that a call raises `BudgetExceeded`.
"""


def approval_note(tools: Iterable[Tool], approvals: Approvals | None) -> str:
    """The prompt line naming the tools whose calls wait for the user's approval ('' when none do)."""
    rules = approvals.rules if approvals is not None else {}
    names = [
        t.name
        for t in tools
        if (t.approve and rule_for(t.name, rules) != "allow") or rule_for(t.name, rules) in ("ask", "deny")
    ]
    return APPROVAL_NOTE.format(names=", ".join(f"`{n}`" for n in names)) if names else ""


def tool_limit_note(limit: int | None) -> str:
    return TOOL_LIMIT_NOTE.format(limit=limit) if limit is not None else ""


def tool_stubs(tools: Iterable[Tool]) -> str:
    tools = list(tools)
    return render_tools(tools) if tools else "# (no tools are registered: plain Python only)"


#: At most this many sources get a line of their own in the search-mode prompt (the largest first).
MAX_LISTED_SOURCES = 20


def source_lines(tools: list[Any], name_chars: int, max_sources: int = MAX_LISTED_SOURCES) -> str:
    """One line per source with its tool count, and the tool names while they fit in ``name_chars``; past
    ``max_sources`` sources the smallest ones are summed up in one line (``search_tools`` finds their tools)."""
    groups: dict[str, list[str]] = {}
    for t in tools:
        namespace = getattr(t, "namespace", "")
        groups.setdefault(namespace, []).append(getattr(t, "attr", t.name))
    ordered = list(groups.items())
    if len(ordered) > max_sources:  # the @tool functions first, then the servers with the most tools
        ordered.sort(key=lambda item: (item[0] != "", -len(item[1])))
    lines = []
    budget = name_chars
    for namespace, names in ordered[:max_sources]:
        where = f"`{namespace}` (an MCP server; call as `{namespace}.<name>(...)`)" if namespace else "functions"
        line = f"- {where}: {len(names)} tool{'s' if len(names) != 1 else ''}"
        listed = ", ".join(names)
        if len(listed) <= budget:
            line += f": {listed}"
            budget -= len(listed)
        lines.append(line)
    rest = ordered[max_sources:]
    if rest:
        count = sum(len(names) for _, names in rest)
        lines.append(f"- and {len(rest)} more MCP servers with {count} tools: find them with `search_tools`")
    return "\n".join(lines)


def tools_section(tools: list[Any], budget_tokens: int | None = None) -> str:
    """The stubs of every tool, or (when they exceed ``budget_tokens``) the sources and how to search."""
    stubs = tool_stubs(tools).rstrip()
    if budget_tokens is None or estimate_tokens(stubs) <= budget_tokens:
        return LISTED_TOOLS.format(stubs=stubs)
    return SEARCHED_TOOLS.format(count=len(tools), sources=source_lines(tools, budget_tokens)).rstrip("\n")


def uses_search(tools: list[Any], budget_tokens: int | None) -> bool:
    return budget_tokens is not None and estimate_tokens(tool_stubs(tools).rstrip()) > budget_tokens


def system_prompt(
    tools: Iterable[Any], data_section: str = "", extra_notes: str = "", budget_tokens: int | None = None
) -> str:
    """The system prompt; past ``budget_tokens`` of stubs, the model finds tools with ``search_tools``."""
    tools = list(tools)
    section = f"\n{data_section.strip()}\n" if data_section.strip() else ""
    notes = (ASYNC_NOTE if tools else "") + RESULT_NOTE + extra_notes
    return HOW_TO_WORK.format(tools_section=tools_section(tools, budget_tokens), data_section=section, notes=notes)


#: Anthropic's server-side tool search over tools sent with ``defer_loading`` (they stay out of the prompt).
TOOL_SEARCH_TOOL: ToolSearchToolBm25_20251119Param = {
    "type": "tool_search_tool_bm25_20251119",
    "name": "tool_search_tool_bm25",
}


def direct_tool_definitions(tools: Iterable[Tool], defer_past_tokens: int | None = None) -> list[ToolUnionParam]:
    """Tools marked ``mode="direct"`` as ordinary Anthropic tool definitions (with ``input_examples``).

    When their definitions exceed ``defer_past_tokens``, each gets ``defer_loading`` and the API's tool-search
    tool is added, so the model loads only the definitions it searches for.
    """
    definitions: list[ToolParam] = []
    for t in tools:
        if t.mode == "code":
            continue
        definition: ToolParam = {
            "name": t.name,
            "description": t.description or t.name,
            "input_schema": t.input_schema,
        }
        if t.examples:
            definition["input_examples"] = [dict(example) for example in t.examples]
        definitions.append(definition)
    over = defer_past_tokens is not None and estimate_tokens(json.dumps(definitions)) > defer_past_tokens
    if not (definitions and over):
        return list(definitions)
    for definition in definitions:
        definition["defer_loading"] = True
    search: ToolSearchToolBm25_20251119Param = {"type": TOOL_SEARCH_TOOL["type"], "name": TOOL_SEARCH_TOOL["name"]}
    return [*definitions, search]
