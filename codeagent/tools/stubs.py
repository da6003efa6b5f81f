"""Python stub source shown to the model: the tool's signature and docstring, escaped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from codeagent.tools.schema import ParamInfo


def docstring_literal(text: str, indent: str = "    ") -> str:
    """A triple-quoted literal whose value is exactly ``text``; quotes and backslashes are escaped.

    Tool descriptions are untrusted text (a ``\"\"\"`` in one must not end the string and start code).
    """
    escaped = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if escaped.endswith('"'):
        escaped = escaped[:-1] + '\\"'
    lines = escaped.split("\n")
    body = "\n".join([lines[0], *[(indent + line) if line.strip() else "" for line in lines[1:]]])
    if len(lines) > 1:
        # continuation lines get the indent in the literal too, which the model reads as ordinary formatting
        return f'"""{body}\n{indent}"""'
    return f'"""{body}"""'


def _param_source(p: ParamInfo) -> str:
    text = p.name
    if p.annotation:
        text += f": {p.annotation}"
    if not p.required:
        text += f" = {p.default!r}" if p.annotation else f"={p.default!r}"
    return text


def example_calls(name: str, examples: Iterable[Mapping[str, Any]]) -> str:
    """``Examples:`` and one call per example (keyword arguments, Python literals), for a docstring."""
    calls = [f"{name}({', '.join(f'{k}={v!r}' for k, v in example.items())})" for example in examples]
    return "Examples:\n" + "\n".join(f"    {call}" for call in calls) if calls else ""


def stub_source(
    name: str,
    params: Iterable[ParamInfo],
    returns: str,
    description: str,
    examples: Iterable[Mapping[str, Any]] = (),
) -> str:
    """``def name(a: int, b: str = "x") -> list[dict]: \"\"\"doc\"\"\" ...`` for one tool."""
    params = list(params)
    parts: list[str] = []
    keyword_only_started = False
    for i, p in enumerate(params):
        if p.kind == "KEYWORD_ONLY" and not keyword_only_started:
            parts.append("*")
            keyword_only_started = True
        parts.append(_param_source(p))
        is_last_positional_only = p.kind == "POSITIONAL_ONLY" and (
            i == len(params) - 1 or params[i + 1].kind != "POSITIONAL_ONLY"
        )
        if is_last_positional_only:
            parts.append("/")
    arrow = f" -> {returns}" if returns else ""
    text = description or f"Call the {name} tool."
    shown = example_calls(name, examples)
    if shown:
        text = f"{text}\n\n{shown}"
    doc = docstring_literal(text)
    return f"def {name}({', '.join(parts)}){arrow}:\n    {doc}\n    ...\n"
