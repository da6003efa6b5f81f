"""The tool registry and the ``@tool`` decorator."""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

import pydantic
from pydantic import BaseModel

from codeagent.tools.schema import (
    ParamInfo,
    annotation_text,
    arguments_schema,
    build_arguments_model,
)
from codeagent.tools.stubs import stub_source

ToolMode = Literal["code", "direct"]
F = TypeVar("F", bound=Callable[..., Any])


class ToolArgumentError(ValueError):
    """Arguments from the sandbox did not match the tool's schema."""


@dataclass
class Tool:
    """A registered notebook function the model's script may call."""

    name: str
    func: Callable[..., Any]
    description: str
    params: list[ParamInfo]
    returns: str
    input_schema: dict[str, Any]
    arguments_model: type[BaseModel]
    mode: ToolMode = "code"
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def stub(self) -> str:
        """The Python stub shown to the model."""
        return stub_source(self.name, self.params, self.returns, self.description)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Validate a JSON arguments object; returns keyword arguments for the function."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be an object, got {type(arguments).__name__}")
        try:
            model = self.arguments_model.model_validate(arguments)
        except pydantic.ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in err['loc']) or '(arguments)'}: {err['msg']}" for err in e.errors()
            )
            raise ToolArgumentError(f"{self.name}(): {problems}") from None
        return {name: getattr(model, name) for name in self.arguments_model.model_fields}

    def spec(self) -> dict[str, Any]:
        """What the sandbox runtime needs to build the stub function (JSON)."""
        return {
            "name": self.name,
            "doc": self.description,
            "params": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "required": p.required,
                    "default": p.default,
                    "annotation": p.annotation,
                }
                for p in self.params
            ],
            "returns": self.returns,
        }


def make_tool(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    mode: ToolMode = "code",
    examples: list[dict[str, Any]] | None = None,
) -> Tool:
    """Describe ``func`` as a tool (schema from type hints, description from the docstring)."""
    if not callable(func):
        raise TypeError(f"@tool needs a function, got {type(func).__name__}")
    tool_name = name or func.__name__
    if not tool_name.isidentifier() or keyword.iskeyword(tool_name) or tool_name.startswith("_"):
        raise ValueError(f"tool name {tool_name!r} must be a public Python identifier (letters, digits, _)")
    if mode not in ("code", "direct"):
        raise ValueError(f"tool mode must be 'code' or 'direct', not {mode!r}")
    model, params = build_arguments_model(func, tool_name)
    if description is None:
        description = inspect.getdoc(func) or ""
    ret = inspect.signature(func).return_annotation
    return Tool(
        name=tool_name,
        func=func,
        description=description.strip(),
        params=params,
        returns=annotation_text(ret),
        input_schema=arguments_schema(model),
        arguments_model=model,
        mode=mode,
        examples=list(examples or []),
    )


class ToolRegistry:
    """Tools by name. One per notebook kernel (``codeagent.tools.registry.default_registry``)."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, tool: Tool) -> Tool:
        self._tools[tool.name] = tool
        return tool

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)

    def clear(self) -> None:
        self._tools.clear()

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def code_tools(self) -> list[Tool]:
        return list(self._tools.values())

    def direct_tools(self) -> list[Tool]:
        return [t for t in self._tools.values() if t.mode == "direct"]


default_registry = ToolRegistry()


@overload
def tool(func: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    mode: ToolMode = "code",
    examples: list[dict[str, Any]] | None = None,
    registry: ToolRegistry | None = None,
) -> Callable[[F], F]: ...
def tool(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    mode: ToolMode = "code",
    examples: list[dict[str, Any]] | None = None,
    registry: ToolRegistry | None = None,
) -> Any:
    """Register a function as a tool the model's script can call.

    Use bare (``@tool``) or with options (``@tool(name=..., description=..., mode="direct")``). The function
    is returned unchanged, so it stays callable from the notebook.
    """

    def register(f: F) -> F:
        (registry or default_registry).add(
            make_tool(f, name=name, description=description, mode=mode, examples=examples)
        )
        return f

    if func is not None:
        return register(func)
    return register
