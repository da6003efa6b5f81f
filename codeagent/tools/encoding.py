"""How tool values travel: encoded for the sandbox (JSON + NumPy/Arrow buffers) or the model (JSON text), and
what the trace keeps of large arguments."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from codeagent.sandbox.protocol import codec

PREVIEW_CHARS = 300
#: Arguments the trace keeps whole up to this many encoded characters; beyond, a preview and the size.
TRACE_VALUE_CHARS = 2_000
_PREVIEW = reprlib.Repr()  # bounded repr: never builds the whole text of a huge list
_PREVIEW.maxstring = _PREVIEW.maxother = 160
_PREVIEW.maxlist = _PREVIEW.maxdict = _PREVIEW.maxtuple = _PREVIEW.maxset = 8


def trace_arguments(args: Any, size: int, limit: int, *, whole: bool = True) -> dict[str, Any]:
    """What the trace keeps of a call's arguments: them, if ``size`` (encoded) is within ``limit``; else each
    value that is large replaced by a short preview naming its size, so a 100 MB argument is not kept twice."""
    if type(args) is not dict:
        args = {"_": args}
    if whole and size <= limit:
        return args
    kept: dict[str, Any] = {}
    for key, value in list(args.items())[:50]:
        if isinstance(value, (bool, int, float)) or value is None:
            kept[str(key)] = value
            continue
        if isinstance(value, str) and len(value) <= PREVIEW_CHARS:
            kept[str(key)] = value
            continue
        text = value if isinstance(value, str) else (array_summary(value) or _PREVIEW.repr(value))
        length = f"{len(value):,} items, " if hasattr(value, "__len__") and not isinstance(value, str) else ""
        kept[str(key)] = f"<{type(value).__name__}, {length}{text[:PREVIEW_CHARS]!s}…>"
    if len(args) > 50:
        kept["…"] = f"{len(args) - 50} more arguments"
    return kept


class ToolValueError(TypeError):
    """A tool returned a value that cannot travel to the sandbox."""


def encode_value(value: Any) -> str:
    """JSON text of a tool's return value, or ToolValueError naming the type that can't be sent."""
    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False, allow_nan=True)
    except (PydanticSerializationError, TypeError, ValueError) as e:
        raise ToolValueError(
            f"the tool returned a {type(value).__module__}.{type(value).__qualname__}, which cannot be sent to "
            f"the sandbox; return JSON-like data (dict, list, str, numbers) ({e})"
        ) from None


def encode_result(value: Any) -> tuple[str, list[codec.Buffer]]:
    """JSON text and binary buffers of a tool's return value (arrays and tables travel as binary)."""
    if value is None:
        return "null", []
    return codec.encode_text(value, fallback=to_jsonable_python)


#: How a value is encoded for where it goes: (JSON text, binary buffers), or ToolValueError.
Encoder = Callable[[Any, str], tuple[str, list[codec.Buffer]]]


def for_sandbox(value: Any, tool_name: str) -> tuple[str, list[codec.Buffer]]:
    """A result for the script: JSON plus NumPy/Arrow buffers."""
    try:
        return encode_result(value)
    except codec.UnsendableValueError as e:
        raise ToolValueError(f"{tool_name}() returned a value that cannot be sent to the sandbox: {e}") from None


def for_model(value: Any, tool_name: str) -> tuple[str, list[codec.Buffer]]:
    """A result for the model (a direct tool): JSON text only."""
    return encode_value(value), []


class UnsendableData(ValueError):
    """A ``--data`` value whose type cannot travel to the sandbox."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


def array_summary(value: Any) -> str:
    """A one-line description of an array or table (for previews), or '' for other values."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if kind == "ndarray" and shape is not None:
        return f"ndarray {getattr(value, 'dtype', '')} shape {tuple(shape)}"
    if kind in ("DataFrame", "Series") and shape is not None:
        return f"{kind} {' × '.join(str(n) for n in shape)}"
    if kind in ("Table", "RecordBatch") and hasattr(value, "num_rows"):
        return f"Arrow {kind} {value.num_rows} × {value.num_columns}"
    return ""
