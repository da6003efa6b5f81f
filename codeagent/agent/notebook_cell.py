"""A finished call's scripts as one notebook cell that reproduces their output without the model.

The scripts are rewritten with :mod:`ast` (edits at node positions, so the model's comments and layout stay):
tool stubs become the registered ``@tool`` functions, ``set_result(x)`` becomes an assignment to a variable the
user names, ``ToolError`` becomes ``Exception`` (the real functions raise their own exception types), and the
final expression of every script but the last is displayed, as the sandbox showed it. ``--data`` names need no
rewriting: in the notebook they already are the notebook's variables. Scripts that failed are left out; the
others are concatenated in order, so a script that used an earlier one's variables still runs.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codeagent.tools.local import LocalTool
from codeagent.tools.registry import Tool, ToolRegistry

if TYPE_CHECKING:
    from codeagent.agent.trace import CodeAgentResult

QUESTION_LINES = 6
QUESTION_LINE_CHARS = 160
NAMES_SHOWN = 12
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
#: Exceptions the sandbox defines, as the built-ins they derive from (the real functions raise their own types).
SANDBOX_ERRORS = {"ToolError": "Exception", "ToolDenied": "PermissionError", "BudgetExceeded": "RuntimeError"}
_NESTED = (*_SCOPES, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class CellError(ValueError):
    """There is nothing to put in a cell (no script ran successfully), or a bad variable name."""


@dataclass
class _Edit:
    start: int
    end: int
    text: str


@dataclass
class _Usage:
    """What the scripts refer to: loaded and assigned names, tools used through ``.aio``."""

    loaded: dict[str, None] = field(default_factory=dict)  # ordered set
    assigned: set[str] = field(default_factory=set)
    module_assigned: dict[str, None] = field(default_factory=dict)
    aio: set[str] = field(default_factory=set)


def cell_source(
    result: CodeAgentResult,
    registry: ToolRegistry,
    namespace: Mapping[str, Any],
    variable: str = "result",
) -> str:
    """The cell for ``result``: a comment saying where it comes from, then its scripts rewritten for the notebook."""
    if not variable.isidentifier() or keyword.iskeyword(variable):
        raise CellError(f"the result variable must be a Python name, not {variable!r}")
    numbers = [i + 1 for i, s in enumerate(result.scripts) if s.status == "ok"]
    kept = [result.scripts[i - 1] for i in numbers]
    if not kept:
        raise CellError("this call ran no script that succeeded, so there is no code to put in a cell")
    trees: list[ast.Module | None] = []
    usage = _Usage()
    for script in kept:
        tree = _parse(script.code)
        trees.append(tree)
        if tree is not None:
            _scan(tree, usage)
    tools = [t for name in usage.loaded if (t := registry.get(name)) is not None and name not in usage.assigned]
    renames, bindings = _tool_names(tools, usage, namespace)

    body: list[str] = []
    for i, (number, script, tree) in enumerate(zip(numbers, kept, trees, strict=True)):
        if len(result.scripts) > 1:
            body.append(f"# --- script {number} ---")
        if tree is None:
            body.append("# (kept as written: it uses IPython syntax the rewriter does not parse)")
            body.append(script.code.rstrip())
            continue
        last = i == len(kept) - 1
        body.append(_rewrite(script.code, tree, renames, variable, display_last=not last).rstrip())

    prologue = []
    if bindings:
        prologue.append("from codeagent.tools import notebook_tool")
        prologue += [f"{alias} = notebook_tool({name!r})" for alias, name in bindings]
    if len(kept) > 1 and any(_needs_display(tree) for tree in trees[:-1]):
        prologue.append("from IPython.display import display")
    header = _header(result, kept, tools, usage, namespace, variable)
    return "\n".join([*header, *prologue, *([""] if prologue else []), *body]) + "\n"


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None  # ran in the sandbox, so IPython syntax (%magic, !shell): kept verbatim


def _scan(tree: ast.Module, usage: _Usage) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                usage.loaded.setdefault(node.id)
            else:
                usage.assigned.add(node.id)
        elif isinstance(node, ast.arg):
            usage.assigned.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            usage.assigned.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            usage.assigned.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.Attribute) and node.attr == "aio" and isinstance(node.value, ast.Name):
            usage.aio.add(node.value.id)
    for statement in tree.body:
        for name in _module_level_names(statement):
            usage.module_assigned.setdefault(name)


def _module_level_names(statement: ast.stmt) -> Iterable[str]:
    """Names a top-level statement binds in the module (so in the notebook), not inside functions."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield statement.name
        return
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        yield from ((a.asname or a.name).partition(".")[0] for a in statement.names)
        return
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, _NESTED):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
        stack.extend(ast.iter_child_nodes(node))


def _tool_names(
    tools: list[Tool], usage: _Usage, namespace: Mapping[str, Any]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """How each tool is reached in the notebook: renames in the code, and ``alias = notebook_tool(name)`` lines.

    A tool the notebook holds under some name is called by that name (the user's own function); an ``async``
    tool, or one the script awaited through ``.aio``, goes through :class:`LocalTool`, which behaves like the
    stub (a plain call blocks and returns the value).
    """
    renames: dict[str, str] = {}
    bindings: list[tuple[str, str]] = []
    taken = set(namespace) | usage.assigned | set(usage.loaded)
    for t in tools:
        if not t.is_async and t.name not in usage.aio:
            own = [n for n, v in namespace.items() if v is t.func and not n.startswith("_")]
            if own:
                if t.name not in own:
                    renames[t.name] = own[0]
                continue
        current = namespace.get(t.name)
        alias = t.name
        if current is not None and not (isinstance(current, LocalTool) and current.tool is t):
            alias = _free_name(f"{t.name}_tool", taken)  # the notebook's own t.name stays untouched
            taken.add(alias)
            renames[t.name] = alias
        bindings.append((alias, t.name))
    return renames, bindings


def _free_name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    return name


def _needs_display(tree: ast.Module | None) -> bool:
    return tree is not None and _displayed_expression(tree) is not None


def _displayed_expression(tree: ast.Module) -> ast.expr | None:
    """The script's final expression if the sandbox showed its value (not ``print(...)``/``set_result(...)``)."""
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return None
    value = tree.body[-1].value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("print", "set_result"):
        return None
    return value


class _Rewriter(ast.NodeVisitor):
    """Collects text edits (byte offsets into the UTF-8 source) for one script."""

    def __init__(self, offsets: list[int], renames: Mapping[str, str], variable: str, set_result_free: bool) -> None:
        self.offsets = offsets
        self.renames = renames
        self.variable = variable
        self.set_result_free = set_result_free
        self.edits: list[_Edit] = []
        self.depth = 0
        self.statement_calls: set[int] = set()

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offsets[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.offsets[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def visit_scope(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_scope

    def visit_Expr(self, node: ast.Expr) -> None:
        if _is_set_result(node.value):
            self.statement_calls.add(id(node.value))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        new = self.renames.get(node.id)
        if new is None and isinstance(node.ctx, ast.Load):
            new = SANDBOX_ERRORS.get(node.id)
        if new is not None:
            start, end = self.span(node)
            self.edits.append(_Edit(start, end, new))

    def visit_arg(self, node: ast.arg) -> None:
        if node.arg in self.renames:
            start, _ = self.span(node)
            self.edits.append(_Edit(start, start + len(node.arg.encode()), self.renames[node.arg]))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        value = _set_result_value(node) if self.set_result_free else None
        if value is None:
            self.generic_visit(node)
            return
        start, end = self.span(node)
        value_start, value_end = self.span(value)
        if id(node) in self.statement_calls and self.depth == 0:
            alone = value.lineno == value.end_lineno == node.lineno and not isinstance(
                value, (ast.GeneratorExp, ast.NamedExpr, ast.Starred)
            )
            if alone:
                self.edits += [_Edit(start, value_start, f"{self.variable} = "), _Edit(value_end, end, "")]
            else:
                self.edits += [_Edit(start, value_start, f"{self.variable} = ("), _Edit(value_end, end, ")")]
        elif id(node) in self.statement_calls:
            self.edits += [_Edit(start, value_start, f"globals()[{self.variable!r}] = ("), _Edit(value_end, end, ")")]
        else:  # inside an expression: an expression that assigns the notebook variable and gives None
            self.edits += [
                _Edit(start, value_start, f"globals().__setitem__({self.variable!r}, ("),
                _Edit(value_end, end, "))"),
            ]
        self.visit(value)


def _is_set_result(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "set_result"


def _set_result_value(node: ast.Call) -> ast.expr | None:
    """``x`` of ``set_result(x)`` / ``set_result(value=x)``; None for anything else."""
    if not _is_set_result(node):
        return None
    if len(node.args) == 1 and not node.keywords and not isinstance(node.args[0], ast.Starred):
        return node.args[0]
    if not node.args and len(node.keywords) == 1 and node.keywords[0].arg == "value":
        return node.keywords[0].value
    return None


def _rewrite(code: str, tree: ast.Module, renames: Mapping[str, str], variable: str, display_last: bool) -> str:
    source = code.encode()
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    assigned: set[str] = set()
    _scan_assigned(tree, assigned)
    rewriter = _Rewriter(offsets, renames, variable, set_result_free="set_result" not in assigned)
    rewriter.visit(tree)
    edits = rewriter.edits
    shown = _displayed_expression(tree) if display_last else None
    if shown is not None:
        start, end = rewriter.span(shown)
        edits += [_Edit(start, start, "display("), _Edit(end, end, ")")]
    out = bytearray()
    position = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        out += source[position : edit.start] + edit.text.encode()
        position = max(position, edit.end)
    out += source[position:]
    return out.decode()


def _scan_assigned(tree: ast.Module, assigned: set[str]) -> None:
    usage = _Usage()
    _scan(tree, usage)
    assigned.update(usage.assigned)


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
    tools: list[Tool],
    usage: _Usage,
    namespace: Mapping[str, Any],
    variable: str,
) -> list[str]:
    scripts = f"{len(kept)} script{'s' if len(kept) != 1 else ''}"
    lines = [f"# codeagent: the code {result.model} ran for this question ({scripts}), rewritten for the notebook:"]
    lines += _comment_lines(result.prompt)
    lines.append(
        "# It runs here, in this notebook's own kernel, NOT in the sandbox: you chose to run it. No model is called."
    )
    if tools:
        lines.append(f"# Tools are your real @tool functions: {_names(t.name for t in tools)}.")
    approved = [t.name for t in tools if t.approve]
    if approved:
        lines.append(f"# No approval is asked for {_names(approved)} here: running this cell is your approval.")
    tool_names = {t.name for t in tools}
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
    if any(_is_set_result(n) for s in kept for n in _walk_code(s.code)):
        lines.append(f"# set_result(...) became `{variable} = ...`.")
    failed = [i + 1 for i, s in enumerate(result.scripts) if s.status != "ok"]
    if failed:
        which = ", ".join(str(i) for i in failed)
        lines.append(f"# Left out: script{'s' if len(failed) > 1 else ''} {which}, which failed in the sandbox.")
    return lines


def _walk_code(code: str) -> Iterable[ast.AST]:
    tree = _parse(code)
    return ast.walk(tree) if tree is not None else ()
