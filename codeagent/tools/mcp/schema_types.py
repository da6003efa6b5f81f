"""Python annotations and TypedDicts from an MCP tool's JSON Schemas (``inputSchema``, ``outputSchema``).

The result is text for the stub the model reads; nothing here is ever executed. Values from the schema (enum
members, defaults, field names) appear only through ``repr`` of plain JSON scalars, and sizes are capped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from codeagent.tools.mcp.naming import identifier

MAX_DEPTH = 3
MAX_ENUM = 24
MAX_UNION = 6
MAX_FIELDS = 40
MAX_LITERAL_CHARS = 80
_NAME = "\x00name\x00"  # placeholder for the class name (untrusted field names may contain braces)
_SIMPLE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def camel(name: str) -> str:
    """``get_current_time`` → ``GetCurrentTime`` (an identifier)."""
    parts = [p for p in identifier(name).replace("-", "_").split("_") if p]
    return identifier("".join(p[:1].upper() + p[1:] for p in parts) or "Value", prefix="T")


def literal(value: Any) -> str | None:
    """``repr`` of a short JSON scalar, or None for anything else."""
    if (
        value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= MAX_LITERAL_CHARS)
    ):
        text = repr(value)
        return text if len(text) <= MAX_LITERAL_CHARS + 2 else None
    return None


@dataclass
class TypeWriter:
    """Turns schemas into annotation text, collecting the TypedDict classes they need."""

    root: dict[str, Any]
    classes: dict[str, str] = field(default_factory=dict)  # name -> class source
    _by_source: dict[str, str] = field(default_factory=dict)  # class source body -> name
    used: set[str] = field(default_factory=set)  # classes named since the last take_used()

    def take_used(self) -> dict[str, str]:
        """The classes used since the last call, in definition order (a class after those it refers to)."""
        used, self.used = self.used, set()
        return {name: source for name, source in self.classes.items() if name in used}

    def resolve(self, schema: Any) -> Any:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def ref_name(self, schema: Any) -> str | None:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None

    def annotation(self, schema: Any, hint: str, depth: int = 0) -> str:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return "Any"
        name = self.ref_name(schema)
        schema = self.resolve(schema)
        if "const" in schema and literal(schema["const"]) is not None:
            return f"Literal[{literal(schema['const'])}]"
        enum = schema.get("enum")
        if isinstance(enum, list) and 0 < len(enum) <= MAX_ENUM:
            members = [literal(v) for v in enum]
            if all(m is not None for m in members):
                return f"Literal[{', '.join(m for m in members if m is not None)}]"
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.union([self.annotation(o, hint, depth + 1) for o in options[:MAX_UNION]])
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.union([self.annotation({**schema, "type": k}, hint, depth) for k in kind[:MAX_UNION]])
        if kind in _SIMPLE:
            return _SIMPLE[kind]
        if kind == "array":
            return f"list[{self.annotation(schema.get('items'), hint + 'Item', depth + 1)}]"
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties")
            if isinstance(properties, dict) and properties:
                return self.typed_dict(camel(name) if name else hint, schema, depth)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                return f"dict[str, {self.annotation(extra, hint + 'Value', depth + 1)}]"
            return "dict"
        return "Any"

    @staticmethod
    def union(options: list[str]) -> str:
        seen: list[str] = []
        for option in options:
            if option not in seen:
                seen.append(option)
        if "Any" in seen:
            return "Any"
        return " | ".join(seen) if seen else "Any"

    def typed_dict(self, name: str, schema: dict[str, Any], depth: int) -> str:
        properties = schema.get("properties") or {}
        listed = schema.get("required")
        required: list[Any] = listed if isinstance(listed, list) else []
        rows: list[tuple[str, str]] = []
        for key, sub in list(properties.items())[:MAX_FIELDS]:
            if not isinstance(key, str):
                continue
            ann = self.annotation(sub, name + camel(key), depth + 1)
            rows.append((key, ann if key in required else f"NotRequired[{ann}]"))
        if all(k.isidentifier() and identifier(k) == k for k, _ in rows):
            body = "\n".join(f"    {k}: {a}" for k, a in rows) or "    pass"
            source = f"class {_NAME}(TypedDict):\n{body}\n"
        else:
            fields = ", ".join(f"{json.dumps(k[:MAX_LITERAL_CHARS])}: {a}" for k, a in rows)
            source = f"{_NAME} = TypedDict('{_NAME}', {{{fields}}})\n"
        if source in self._by_source:
            self.used.add(self._by_source[source])
            return self._by_source[source]
        unique, n = name, 1
        while unique in self.classes:
            n += 1
            unique = f"{name}{n}"
        self.classes[unique] = source.replace(_NAME, unique)
        self._by_source[source] = unique
        self.used.add(unique)
        return unique
