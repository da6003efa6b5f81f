"""A finished call's scripts as one notebook cell that reproduces their output without the model.

The scripts are rewritten (:mod:`cell_rewrite`): tool stubs become the registered tools, bound with
``notebook_tool("name")`` (MCP namespaces with ``notebook_tools("ns")``), which call them the way the sandbox's
stubs did (validation, values through the bridge's encoding), so the cell prints what the sandbox printed.
``set_result(x)`` becomes an assignment to a variable the user names, ``ToolError`` is imported from
:mod:`codeagent.tools` (the tools raise it as the stubs did), and the final expression of every script but the
last is displayed, as the sandbox showed it. ``--data`` names need no rewriting: in the notebook they already are the
notebook's variables. Scripts that failed are left out; the others are concatenated in order, so a script that
used an earlier one's variables still runs.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from codeagent.agent.cell_rewrite import Usage, is_set_result, needs_display, parse, rewrite, scan, walk_code
from codeagent.tools.local import LocalNamespace, LocalTool

if TYPE_CHECKING:
    from codeagent.agent.trace import CodeAgentResult

QUESTION_LINES = 6
QUESTION_LINE_CHARS = 160
NAMES_SHOWN = 12


class CellError(ValueError):
    """There is nothing to put in a cell (no script ran successfully), or a bad variable name."""


def cell_source(
    result: CodeAgentResult,
    registry: Any,
    namespace: Mapping[str, Any],
    variable: str = "result",
) -> str:
    """The cell for ``result``: a comment saying where it comes from, then its scripts rewritten for the notebook.

    ``registry``: the tools (a ``ToolRegistry``, or a ``ToolBox`` with the MCP servers' tools too).
    """
    if not variable.isidentifier() or keyword.iskeyword(variable):
        raise CellError(f"the result variable must be a Python name, not {variable!r}")
    numbers = [i + 1 for i, s in enumerate(result.scripts) if s.status == "ok"]
    kept = [result.scripts[i - 1] for i in numbers]
    if not kept:
        raise CellError("this call ran no script that succeeded, so there is no code to put in a cell")
    trees: list[ast.Module | None] = []
    usage = Usage()
    for script in kept:
        tree = parse(script.code)
        trees.append(tree)
        if tree is not None:
            scan(tree, usage)
    tools = [t for name in usage.loaded if (t := registry.get(name)) is not None and name not in usage.assigned]
    mcp = [
        t
        for ns, attr in usage.attributes
        if ns not in usage.assigned and (t := registry.get(f"{ns}.{attr}")) is not None
    ]
    known = set(getattr(registry, "namespaces", list)())
    spaces = list(dict.fromkeys([t.namespace for t in mcp] + [n for n in usage.loaded if n in known]))
    spaces = [n for n in spaces if n not in usage.assigned]
    renames, bindings = _bindings(tools, spaces, usage, namespace)

    body: list[str] = []
    for i, (number, script, tree) in enumerate(zip(numbers, kept, trees, strict=True)):
        if len(result.scripts) > 1:
            body.append(f"# --- script {number} ---")
        if tree is None:
            body.append("# (kept as written: it uses IPython syntax the rewriter does not parse)")
            body.append(script.code.rstrip())
            continue
        last = i == len(kept) - 1
        body.append(rewrite(script.code, tree, renames, variable, display_last=not last).rstrip())

    prologue = []
    names = [f for f in ("notebook_tool", "notebook_tools") if any(c.startswith(f + "(") for _, c in bindings)]
    if "ToolError" in usage.loaded and "ToolError" not in usage.assigned:
        names.append("ToolError")  # what the cell's tools raise for a non-built-in exception, as the stubs did
    if names:
        prologue.append(f"from codeagent.tools import {', '.join(names)}")
    prologue += [f"{alias} = {call}" for alias, call in bindings]
    if len(kept) > 1 and any(needs_display(tree) for tree in trees[:-1]):
        prologue.append("from IPython.display import display")
    header = _header(result, kept, [*tools, *mcp], set(spaces), usage, namespace, variable)
    return "\n".join([*header, *prologue, *([""] if prologue else []), *body]) + "\n"


def _bindings(
    tools: list[Any], spaces: list[str], usage: Usage, namespace: Mapping[str, Any]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """How each tool is reached in the notebook: renames in the code, and ``alias = notebook_tool(name)`` lines.

    Every tool goes through :class:`LocalTool` (it calls the tool as the stub did); it is bound under the tool's
    own name unless the notebook holds something else there (the user's own function, say), which stays
    untouched: then the cell uses an alias such as ``name_tool``. MCP namespaces likewise (``ns_tools``).
    """
    renames: dict[str, str] = {}
    bindings: list[tuple[str, str]] = []
    taken = set(namespace) | usage.assigned | set(usage.loaded)
    wanted = [(t.name, f"notebook_tool({t.name!r})", "_tool") for t in tools]
    wanted += [(ns, f"notebook_tools({ns!r})", "_tools") for ns in spaces]
    for name, call, suffix in wanted:
        current = namespace.get(name)
        alias = name
        if current is not None and not _is_binding_of(current, name):
            alias = f"{name}{suffix}"
            if not _is_binding_of(namespace.get(alias), name):  # else: an earlier run's alias, bound again
                alias = _free_name(alias, taken)
            taken.add(alias)
            renames[name] = alias
        bindings.append((alias, call))
    return renames, bindings


def _is_binding_of(value: Any, name: str) -> bool:
    """``value`` is what an earlier run of such a cell bound to ``name`` (so binding it again loses nothing)."""
    if isinstance(value, LocalTool):
        return bool(value.tool.name == name)
    return isinstance(value, LocalNamespace) and value.__dict__.get("_name") == name


def _free_name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    return name


def _comment_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.strip().splitlines()] or [""]
    shown = lines[:QUESTION_LINES]
    out = [
        "#   " + (line if len(line) <= QUESTION_LINE_CHARS else line[: QUESTION_LINE_CHARS - 1] + "…") for line in shown
    ]
    if len(lines) > QUESTION_LINES:
        out.append(f"#   … ({len(lines) - QUESTION_LINES} more lines)")
    return out


def _names(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f", … ({len(names) - NAMES_SHOWN} more)" if len(names) > NAMES_SHOWN else "")


def _header(
    result: CodeAgentResult,
    kept: list[Any],
    tools: list[Any],
    spaces: set[str],
    usage: Usage,
    namespace: Mapping[str, Any],
    variable: str,
) -> list[str]:
    scripts = f"{len(kept)} script{'s' if len(kept) != 1 else ''}"
    lines = [f"# codeagent: the code {result.model} ran for this question ({scripts}), rewritten for the notebook:"]
    lines += _comment_lines(result.prompt)
    lines.append(
        "# It runs here, in this notebook's own kernel, NOT in the sandbox: you chose to run it. No model is called."
    )
    plain = [t.name for t in tools if not getattr(t, "namespace", None)]
    mcp = [t.name for t in tools if getattr(t, "namespace", None)]
    if plain:
        lines.append(f"# Tools are your real @tool functions: {_names(plain)}.")
    if mcp:
        servers = sorted({t.server for t in tools if getattr(t, "namespace", None)})
        lines.append(f"# MCP tools are called from this kernel on the server(s) {_names(servers)}: {_names(mcp)}.")
    if tools:
        lines.append(
            "# notebook_tool() calls them as the sandbox's stubs did: arguments checked and coerced, values passed "
            "through JSON."
        )
    approved = [t.name for t in tools if t.approve]
    if approved:
        lines.append(f"# No approval is asked for {_names(approved)} here: running this cell is your approval.")
    tool_names = {t.name for t in tools} | spaces
    reads = [
        n
        for n in usage.loaded
        if n in namespace and n not in usage.assigned and n not in tool_names and not n.startswith("_")
    ]
    if reads:
        lines.append(f"# It uses these notebook variables (the sandbox had copies): {_names(reads)}.")
    sets = [n for n in usage.module_assigned if n in namespace and not n.startswith("_")]
    if sets:
        lines.append(f"# It overwrites these notebook variables: {_names(sets)}.")
    if any(is_set_result(n) for s in kept for n in walk_code(s.code)):
        lines.append(f"# set_result(...) became `{variable} = ...`.")
    failed = [i + 1 for i, s in enumerate(result.scripts) if s.status != "ok"]
    if failed:
        which = ", ".join(str(i) for i in failed)
        lines.append(f"# Left out: script{'s' if len(failed) > 1 else ''} {which}, which failed in the sandbox.")
    return lines
