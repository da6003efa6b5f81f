"""One MCP tool as the rest of codeagent sees a tool: name, stub, JSON spec for the sandbox, validation, call.

Everything here comes from an untrusted server. Names are sanitised identifiers (:mod:`naming`), text reaches
the stub only inside an escaped docstring, schema values only as ``repr`` of short scalars; the sandbox builds
its stub from JSON (never from source), so no server text is ever executed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codeagent.tools.mcp.schema_types import TypeWriter, camel, literal
from codeagent.tools.registry import ToolArgumentError
from codeagent.tools.schema import ParamInfo
from codeagent.tools.stubs import docstring_literal

MAX_DESCRIPTION = 1_500
MAX_PARAM_DESCRIPTION = 300
MAX_SCHEMA_CHARS = 64 * 1024


class BadToolSchema(ValueError):
    """A tool's schema is invalid or too large; the tool is left out."""


def _cap(text: Any, limit: int) -> str:
    text = text if isinstance(text, str) else ""
    text = "".join(ch for ch in text.strip() if ch >= " " or ch in "\n\t")
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class McpTool:
    """A tool of an MCP server, callable from the sandbox as ``namespace.attr(...)``."""

    server: str  # the server's name as given to add_mcp_server
    namespace: str  # its identifier in the sandbox
    attr: str  # this tool's identifier in the namespace
    remote_name: str  # the name the server knows it by
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    params: list[ParamInfo]
    returns: str
    classes: dict[str, str]  # TypedDict sources the stub's annotations use
    param_keys: dict[str, str]  # Python parameter name -> the schema's property name
    invoke: Callable[[str, dict[str, Any]], Any] = field(repr=False)  # (remote name, arguments) -> value
    annotations: dict[str, Any] = field(default_factory=dict)  # the server's hints: never loosen anything
    approve: bool = False  # ask before each call (human-in-the-loop approvals)
    mode: str = "code"
    examples: list[dict[str, Any]] = field(default_factory=list)
    is_async: bool = False
    _validator: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The qualified name the bridge and the trace use: ``namespace.attr``."""
        return f"{self.namespace}.{self.attr}"

    @property
    def source(self) -> str:
        return self.namespace

    def func(self, **kwargs: Any) -> Any:
        return self.invoke(self.remote_name, kwargs)

    # -- what the model and the sandbox see ------------------------------------------------------------

    def method_source(self, indent: str = "    ") -> str:
        """The stub as a method of the namespace class (signature, docstring, ``...``)."""
        parts: list[str] = []
        star = False
        for p in self.params:
            if p.kind == "KEYWORD_ONLY" and not star:
                parts.append("*")
                star = True
            text = f"{p.name}: {p.annotation}" if p.annotation else p.name
            if not p.required:
                text += f" = {literal(p.default) or 'None'}"
            parts.append(text)
        doc = docstring_literal(self.docstring(), indent + "    ")
        return f"{indent}def {self.attr}({', '.join(parts)}) -> {self.returns}:\n{indent}    {doc}\n{indent}    ...\n"

    def docstring(self) -> str:
        text = self.description or f"Call the {self.attr} tool."
        if self.remote_name != self.attr:
            text += f"\n\n(The server calls this tool {json.dumps(self.remote_name[:80])}.)"
        described = [
            (p.name, _cap(self.input_schema["properties"][self.param_keys[p.name]].get("description"), 300))
            for p in self.params
            if isinstance(self.input_schema["properties"].get(self.param_keys[p.name]), dict)
        ]
        described = [(n, d) for n, d in described if d]
        if described:
            text += "\n\nArgs:\n" + "\n".join(f"    {n}: {d}" for n, d in described)
        return text

    @property
    def stub(self) -> str:
        """The stub on its own: the namespace class with this one method (and the TypedDicts it returns)."""
        return render_namespace(self.namespace, [self])

    def spec(self) -> dict[str, Any]:
        """What the sandbox runtime needs to build the stub (JSON); ``call`` is the bridge name."""
        return {
            "name": self.attr,
            "namespace": self.namespace,
            "call": self.name,
            "doc": self.docstring(),
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

    def search_text(self) -> str:
        """What the tool-search index reads: name, server, description, arguments, output fields."""
        words = [self.attr, self.remote_name, self.server, self.description]
        for key, prop in (self.input_schema.get("properties") or {}).items():
            words.append(str(key))
            if isinstance(prop, dict):
                words.append(_cap(prop.get("description"), MAX_PARAM_DESCRIPTION))
        if self.output_schema:
            words.extend(str(k) for k in (self.output_schema.get("properties") or {}))
        return " ".join(words)

    # -- validation ------------------------------------------------------------------------------------

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Arguments from the script (Python parameter names) as the server's keys, checked against its
        ``inputSchema``; raises ToolArgumentError."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}(): arguments must be an object, got {type(arguments).__name__}")
        required = set(self.input_schema.get("required") or [])
        properties = self.input_schema.get("properties") or {}
        out: dict[str, Any] = {}
        for key, value in arguments.items():
            remote = self.param_keys.get(str(key), str(key))
            prop = properties.get(remote)
            has_default = isinstance(prop, dict) and "default" in prop
            if value is None and remote not in required and not has_default:
                continue  # an optional argument the script left out: the server sees it absent
            out[remote] = value
        problems = sorted(self._validator.iter_errors(out), key=lambda e: list(e.absolute_path))
        if problems:
            shown = "; ".join(
                f"{'.'.join(str(x) for x in e.absolute_path) or '(arguments)'}: {e.message[:200]}" for e in problems[:3]
            )
            raise ToolArgumentError(f"{self.name}(): {shown}")
        return out


def render_namespace(namespace: str, tools: list[McpTool], title: str = "") -> str:
    """``class ns:`` holding the TypedDicts and methods of these tools (as shown to the model)."""
    classes: dict[str, str] = {}
    for t in tools:
        classes.update(t.classes)
    doc = docstring_literal(title or f"MCP server tools: call them as {namespace}.<name>(...).", "    ")
    body = [f"class {namespace}:\n    {doc}\n"]
    for source in classes.values():
        body.append("".join(f"    {line}\n" if line else "\n" for line in source.rstrip("\n").split("\n")))
    body.extend(t.method_source() for t in tools)
    return "\n".join(body)


def make_mcp_tool(
    listed: Any,
    *,
    server: str,
    namespace: str,
    attr: str,
    invoke: Callable[[str, dict[str, Any]], Any],
    approve: bool = False,
    writer: TypeWriter | None = None,
) -> McpTool:
    """An McpTool from an ``mcp_types.Tool`` as listed by the server; raises BadToolSchema."""
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    input_schema = listed.input_schema if isinstance(listed.input_schema, dict) else {}
    output_schema = listed.output_schema if isinstance(listed.output_schema, dict) else None
    try:
        size = len(json.dumps(input_schema)) + len(json.dumps(output_schema))
    except (TypeError, ValueError):
        raise BadToolSchema("the schema is not JSON") from None
    if size > MAX_SCHEMA_CHARS:
        raise BadToolSchema(f"the schema is {size:,} characters (at most {MAX_SCHEMA_CHARS:,})")
    input_schema = {**input_schema, "type": "object"}
    try:
        cls = jsonschema.validators.validator_for(input_schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(input_schema)
        validator = cls(input_schema)
    except Exception as e:
        raise BadToolSchema(f"invalid inputSchema: {str(e).splitlines()[0][:200]}") from None
    properties = input_schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    input_schema["properties"] = properties
    required = [k for k in input_schema.get("required") or [] if isinstance(k, str) and k in properties]
    from codeagent.tools.mcp.naming import unique_names

    names = unique_names([k for k in properties if isinstance(k, str)], prefix="arg")
    writer = writer or TypeWriter({})  # one per server, so TypedDict names stay distinct across its tools
    writer.root = input_schema
    writer.take_used()
    params: list[ParamInfo] = []
    ordered = [k for k in properties if k in required] + [k for k in properties if k not in required]
    for key in ordered:
        if not isinstance(key, str):
            continue
        prop = properties[key]
        annotation = writer.annotation(prop, camel(attr) + camel(key))
        default = prop.get("default") if isinstance(prop, dict) else None
        is_required = key in required
        shown = None if is_required or literal(default) is None else default  # long defaults stay server-side
        params.append(
            ParamInfo(
                name=names[key],
                annotation=annotation if is_required or shown is not None else f"{annotation} | None",
                required=is_required,
                default=shown,
                kind="POSITIONAL_OR_KEYWORD" if is_required else "KEYWORD_ONLY",
            )
        )
    returns = "Any"
    if output_schema:
        writer.root = output_schema
        returns = writer.annotation(output_schema, camel(attr) + "Result")
    annotations = {}
    if getattr(listed, "annotations", None) is not None:
        annotations = listed.annotations.model_dump(exclude_none=True)
    return McpTool(
        server=server,
        namespace=namespace,
        attr=attr,
        remote_name=listed.name,
        description=_cap(listed.description, MAX_DESCRIPTION),
        input_schema=input_schema,
        output_schema=output_schema,
        params=params,
        returns=returns,
        classes=writer.take_used(),
        param_keys={v: k for k, v in names.items()},
        invoke=invoke,
        annotations=annotations,
        approve=approve,
        _validator=validator,
    )
