"""JSON Schema and argument validation for a tool, from its signature, type hints and docstring."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docstring_parser
import pydantic
from pydantic import BaseModel, ConfigDict, create_model


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as shown in the stub and sent to the sandbox."""

    name: str
    annotation: str  # source-like text, e.g. "list[dict]"
    required: bool
    default: Any = None  # JSON value; meaningful only when not required
    kind: str = "POSITIONAL_OR_KEYWORD"


def annotation_text(annotation: Any) -> str:
    """The annotation as it would be written in source (``list[dict]``, ``str | None``)."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    text = inspect.formatannotation(annotation)
    return text.replace("typing.", "")


def _resolved_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)  # keep Annotated[...] constraints
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return dict(getattr(func, "__annotations__", {}))


def parse_docstring(func: Callable[..., Any]) -> docstring_parser.Docstring:
    return docstring_parser.parse(inspect.getdoc(func) or "")


def build_arguments_model(func: Callable[..., Any], tool_name: str) -> tuple[type[BaseModel], list[ParamInfo]]:
    """A pydantic model of the tool's keyword arguments, and the parameter list for stubs."""
    sig = inspect.signature(func)
    hints = _resolved_hints(func)
    doc = parse_docstring(func)
    param_docs = {p.arg_name: p.description for p in doc.params}
    fields: dict[str, Any] = {}
    params: list[ParamInfo] = []
    for p in sig.parameters.values():
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(
                f"tool {tool_name!r}: *args/**kwargs cannot be described to the model; "
                "give the tool explicit parameters"
            )
        hint = hints.get(p.name, Any)
        required = p.default is inspect.Parameter.empty
        default = ... if required else p.default
        field = pydantic.Field(default, description=param_docs.get(p.name) or None)
        fields[p.name] = (hint, field)
        params.append(
            ParamInfo(
                name=p.name,
                annotation=annotation_text(p.annotation if p.annotation is not p.empty else ""),
                required=required,
                default=None if required else pydantic.TypeAdapter(Any).dump_python(p.default, mode="json"),
                kind=p.kind.name,
            )
        )
    model = create_model(
        f"{tool_name}_arguments",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )
    return model, params


def arguments_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of the arguments object, as Anthropic's ``input_schema`` expects."""
    try:
        schema = model.model_json_schema()
    except pydantic.errors.PydanticInvalidForJsonSchema:
        schema = {"type": "object", "properties": {n: {} for n in model.model_fields}}
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema.setdefault("properties", {})
    schema["type"] = "object"
    return schema
