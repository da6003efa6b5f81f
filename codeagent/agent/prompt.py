"""The system prompt and the one client tool the model acts through."""

from __future__ import annotations

from collections.abc import Iterable

from anthropic.types import ToolParam

from codeagent.tools.approval import Approvals, rule_for
from codeagent.tools.registry import Tool

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
These functions are already defined in that kernel; call them directly, do not import or redefine them:

```python
{stubs}
```
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
    stubs = [t.stub for t in tools]
    return "\n".join(stubs) if stubs else "# (no tools are registered: plain Python only)"


def system_prompt(tools: Iterable[Tool], data_section: str = "", extra_notes: str = "") -> str:
    tools = list(tools)
    section = f"\n{data_section.strip()}\n" if data_section.strip() else ""
    notes = (ASYNC_NOTE if tools else "") + RESULT_NOTE + extra_notes
    return HOW_TO_WORK.format(stubs=tool_stubs(tools).rstrip(), data_section=section, notes=notes)


def direct_tool_definitions(tools: Iterable[Tool]) -> list[ToolParam]:
    """Tools marked ``mode="direct"`` as ordinary Anthropic tool definitions (with ``input_examples``)."""
    definitions: list[ToolParam] = []
    for t in tools:
        if t.mode != "direct":
            continue
        definition: ToolParam = {
            "name": t.name,
            "description": t.description or t.name,
            "input_schema": t.input_schema,
        }
        if t.examples:
            definition["input_examples"] = [dict(example) for example in t.examples]
        definitions.append(definition)
    return definitions
