"""The edits that make one sandbox script run in the notebook (used by :mod:`notebook_cell`).

Edits are made at node positions (UTF-8 byte offsets into the source), so the model's comments and layout stay:
tool names are renamed, ``set_result(x)`` becomes an assignment, the sandbox's exception names become built-ins,
and a script's final expression can be wrapped in ``display(...)``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
#: Exceptions the sandbox defines, as the cell names them: ``ToolError`` is imported from codeagent.tools (the
#: cell's tools raise it as the stubs did); no gate runs in the cell, so the other two are their built-in bases.
SANDBOX_ERRORS = {"ToolDenied": "PermissionError", "BudgetExceeded": "RuntimeError"}
_NESTED = (*_SCOPES, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class _Edit:
    start: int
    end: int
    text: str


@dataclass
class Usage:
    """What the scripts refer to: loaded and assigned names, tools used through ``.aio``."""

    loaded: dict[str, None] = field(default_factory=dict)  # ordered set
    assigned: set[str] = field(default_factory=set)
    module_assigned: dict[str, None] = field(default_factory=dict)
    aio: set[str] = field(default_factory=set)
    attributes: dict[tuple[str, str], None] = field(default_factory=dict)  # ``name.attr`` loaded (MCP tools)


def parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None  # ran in the sandbox, so IPython syntax (%magic, !shell): kept verbatim


def scan(tree: ast.Module, usage: Usage) -> None:
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
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr == "aio":
                usage.aio.add(node.value.id)
            usage.attributes.setdefault((node.value.id, node.attr))
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


def needs_display(tree: ast.Module | None) -> bool:
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
        if is_set_result(node.value):
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


def is_set_result(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "set_result"


def _set_result_value(node: ast.Call) -> ast.expr | None:
    """``x`` of ``set_result(x)`` / ``set_result(value=x)``; None for anything else."""
    if not is_set_result(node):
        return None
    if len(node.args) == 1 and not node.keywords and not isinstance(node.args[0], ast.Starred):
        return node.args[0]
    if not node.args and len(node.keywords) == 1 and node.keywords[0].arg == "value":
        return node.keywords[0].value
    return None


def rewrite(code: str, tree: ast.Module, renames: Mapping[str, str], variable: str, display_last: bool) -> str:
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
    usage = Usage()
    scan(tree, usage)
    assigned.update(usage.assigned)


def walk_code(code: str) -> Iterable[ast.AST]:
    tree = parse(code)
    return ast.walk(tree) if tree is not None else ()
