"""The tool registry and the ``@tool`` decorator."""

from __future__ import annotations

import inspect
import keyword
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import UnionType
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

#: code: a stub in the sandbox; direct: offered to the model as an Anthropic tool only; both: each.
ToolMode = Literal["code", "direct", "both"]
F = TypeVar("F", bound=Callable[..., Any])

#: Names the sandbox defines next to the tools.
RESERVED_NAMES = frozenset({"set_result", "ToolError", "ToolDenied", "BudgetExceeded"})
#: Annotations whose values pydantic returns unchanged (or as an equal copy) when their type matches exactly.
_SIMPLE: dict[Any, tuple[type, ...]] = {t: (t,) for t in (str, int, float, bool, list, dict)}
_FastParam = tuple[str, "tuple[type, ...] | type | None", bool, Any]  # name, types (None: any), required, field


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
    approve: bool = False  # every call asks the person in the notebook first (codeagent.tools.approval)
    is_async: bool = field(default=False, init=False)
    _fast: list[_FastParam] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.func)
        self._fast = fast_checks(self.arguments_model)

    @property
    def stub(self) -> str:
        """The Python stub shown to the model (examples appear in its docstring)."""
        return stub_source(self.name, self.params, self.returns, self.description, self.examples)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Validate a JSON arguments object; returns keyword arguments for the function.

        Arguments whose types already match plain annotations exactly (str, int, float, bool, list, dict,
        arrays, frames) skip pydantic; anything else goes through the full model, with the same result.
        """
        if self._fast is not None and type(arguments) is dict:
            kwargs = _fast_validate(self._fast, arguments)
            if kwargs is not None:
                return kwargs
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


def fast_checks(model: type[BaseModel]) -> list[_FastParam] | None:
    """Per-parameter exact type checks, or None when some parameter needs pydantic (constraints, generics)."""
    checks: list[_FastParam] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if info.metadata or info.default_factory is not None:
            return None
        if annotation is Any:
            types: tuple[type, ...] | type | None = None
        elif annotation in _SIMPLE:
            types = _SIMPLE[annotation]
        elif _optional_of(annotation) in _SIMPLE:
            types = (*_SIMPLE[_optional_of(annotation)], type(None))
        elif isinstance(annotation, type) and annotation.__module__.partition(".")[0] in ("numpy", "pandas", "pyarrow"):
            types = annotation  # pydantic checks these with isinstance (arbitrary types)
        else:
            return None
        checks.append((name, types, info.is_required(), info))
    return checks


def _optional_of(annotation: Any) -> Any:
    """``T`` for ``T | None`` / ``Optional[T]``, else None."""
    if typing.get_origin(annotation) not in (typing.Union, UnionType):
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 and len(typing.get_args(annotation)) == 2 else None


def _fast_validate(checks: list[_FastParam], arguments: dict[str, Any]) -> dict[str, Any] | None:
    """Keyword arguments when every given value matches exactly and no name is unknown; else None."""
    kwargs: dict[str, Any] = {}
    matched = 0
    for name, types, required, info in checks:
        if name in arguments:
            value = arguments[name]
            if types is not None:
                if isinstance(types, tuple):
                    if type(value) not in types:
                        return None
                elif not isinstance(value, types):
                    return None
            kwargs[name] = value
            matched += 1
        elif required:
            return None
        else:
            kwargs[name] = info.get_default(call_default_factory=True)
    return kwargs if matched == len(arguments) else None


def make_tool(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    mode: ToolMode = "code",
    examples: list[dict[str, Any]] | None = None,
    approve: bool = False,
) -> Tool:
    """Describe ``func`` as a tool (schema from type hints, description from the docstring)."""
    if not callable(func):
        raise TypeError(f"@tool needs a function, got {type(func).__name__}")
    tool_name = name or func.__name__
    if not tool_name.isidentifier() or keyword.iskeyword(tool_name) or tool_name.startswith("_"):
        raise ValueError(f"tool name {tool_name!r} must be a public Python identifier (letters, digits, _)")
    if tool_name in RESERVED_NAMES:
        raise ValueError(f"tool name {tool_name!r} is reserved by codeagent; pass name=... to @tool")
    if mode not in ("code", "direct", "both"):
        raise ValueError(f"tool mode must be 'code', 'direct' or 'both', not {mode!r}")
    model, params = build_arguments_model(func, tool_name)
    if description is None:
        description = inspect.getdoc(func) or ""
    ret = inspect.signature(func).return_annotation
    made = Tool(
        name=tool_name,
        func=func,
        description=description.strip(),
        params=params,
        returns=annotation_text(ret),
        input_schema=arguments_schema(model),
        arguments_model=model,
        mode=mode,
        examples=list(examples or []),
        approve=bool(approve),
    )
    for i, example in enumerate(made.examples, 1):
        if not isinstance(example, dict):
            raise TypeError(
                f"tool {tool_name!r}: example {i} must be a dict of arguments, not {type(example).__name__}"
            )
        try:
            made.validate(example)
        except ToolArgumentError as e:
            raise ValueError(f"tool {tool_name!r}: example {i} does not match the parameters: {e}") from None
    return made


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
        """Tools the script may call (a stub each in the sandbox): every mode but ``direct``."""
        return [t for t in self._tools.values() if t.mode != "direct"]

    def direct_tools(self) -> list[Tool]:
        """Tools offered to the model as ordinary tool definitions: ``direct`` and ``both``."""
        return [t for t in self._tools.values() if t.mode != "code"]


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
    approve: bool = False,
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
    approve: bool = False,
    registry: ToolRegistry | None = None,
) -> Any:
    """Register a function as a tool the model's script can call.

    Use bare (``@tool``) or with options (``@tool(name=..., description=..., mode="direct")``). The function
    is returned unchanged, so it stays callable from the notebook. ``approve=True`` marks a tool with side
    effects: every call from a script pauses it and asks the person in the notebook (``y`` / ``a`` / ``n``);
    a denied call raises ``ToolDenied`` in the script.
    """

    def register(f: F) -> F:
        (registry if registry is not None else default_registry).add(
            make_tool(f, name=name, description=description, mode=mode, examples=examples, approve=approve)
        )
        return f

    if func is not None:
        return register(func)
    return register
