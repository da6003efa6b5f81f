"""Values and messages across the tool bridge. Imported on both sides; standard library only at import time.

A value travels as UTF-8 JSON plus binary buffers: NumPy arrays as their raw bytes (dtype, shape and order in
the JSON), pandas DataFrames/Series and Arrow tables as Arrow IPC streams. Everything else must be JSON-like.
Nothing is ever unpickled: object dtypes are refused on the way out and on the way in.

Framing of messages on the stream socket is :mod:`codeagent.sandbox.protocol.frames` (its names are
re-exported here, where both sides have always looked for them).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from codeagent.sandbox.protocol.frames import (  # noqa: F401 - re-exported: callers use codec.<name>
    MAGIC,
    Buffer,
    FrameDecoder,
    MessageTooLarge,
    ProtocolError,
    allocate,
    frame_header,
    message_size,
    ok_head,
    pack,
    text,
    wire_buffers,
)

#: The key of the JSON object that stands for a binary buffer. A user dict with this key cannot be sent.
MARKER = "__codeagent_buffer__"
_ARRAY_KINDS = "biufcmMSU"  # bool, ints, floats, complex, timedelta, datetime, bytes, str: never "O" or "V"
_MAX_NDIM = 64


class CodecError(Exception):
    """A value could not be encoded or decoded."""


class UnsendableValueError(CodecError, TypeError):
    """The value (or something inside it) has a type the bridge cannot carry."""


class MalformedDataError(CodecError, ValueError):
    """Received bytes that are not a valid encoding (never trusted, never executed)."""


def type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


# -- values ---------------------------------------------------------------------------------------------


class _Encoder:
    def __init__(self, fallback: Callable[[Any], Any] | None) -> None:
        self.buffers: list[Buffer] = []
        self.fallback = fallback

    def default(self, obj: Any) -> Any:
        """Called by ``json.dumps`` for every object it does not know."""
        root = type(obj).__module__.partition(".")[0]
        if root == "numpy":
            return self._numpy(obj)
        if root == "pandas":
            return self._pandas(obj)
        if root == "pyarrow":
            return self._arrow(obj)
        if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
            return obj.isoformat()
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if self.fallback is not None:
            try:
                return self.fallback(obj)
            except Exception:
                pass
        raise _unsendable(obj)

    def _placeholder(self, kind: str, buffer: Buffer, **extra: Any) -> dict[str, Any]:
        self.buffers.append(buffer)
        return {MARKER: len(self.buffers) - 1, "kind": kind, **extra}

    def _numpy(self, obj: Any) -> Any:
        import numpy as np

        if isinstance(obj, np.ndarray):
            return self._ndarray(obj)
        if isinstance(obj, np.generic):
            if obj.dtype.kind in "mM":
                return str(obj)
            if obj.dtype.kind in "biufc" and obj.dtype.kind != "c":
                return obj.item()
        raise _unsendable(obj)

    def _ndarray(self, arr: Any) -> dict[str, Any]:
        dtype = arr.dtype
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in _ARRAY_KINDS or dtype.itemsize == 0:
            raise UnsendableValueError(
                f"cannot send a numpy array of dtype {dtype} (object, structured and empty dtypes are refused: "
                "they would need pickle); convert it, e.g. arr.astype(str) or a pandas DataFrame"
            )
        if arr.flags.c_contiguous:
            order, data = "C", arr
        elif arr.flags.f_contiguous:
            order, data = "F", arr.T
        else:
            import numpy as np

            order, data = "C", np.ascontiguousarray(arr)
        raw = data.reshape(-1).view("u1")  # a view: no copy for contiguous arrays
        return self._placeholder("ndarray", memoryview(raw), dtype=dtype.str, shape=list(arr.shape), order=order)

    def _pandas(self, obj: Any) -> Any:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return self._placeholder("dataframe", _arrow_ipc(_table_from_pandas(obj)))
        if isinstance(obj, pd.Series):
            name = obj.name if obj.name is None or isinstance(obj.name, (str, int, float, bool)) else str(obj.name)
            frame = obj.to_frame(name="__value__")
            return self._placeholder("series", _arrow_ipc(_table_from_pandas(frame)), name=name)
        if isinstance(obj, pd.Timestamp):
            return obj.isoformat()
        if isinstance(obj, pd.Timedelta):
            return str(obj)
        if obj is pd.NaT:
            return None
        raise _unsendable(obj)

    def _arrow(self, obj: Any) -> Any:
        import pyarrow as pa

        if isinstance(obj, pa.Table):
            return self._placeholder("arrow", _arrow_ipc(obj))
        if isinstance(obj, pa.RecordBatch):
            return self._placeholder("arrow", _arrow_ipc(pa.Table.from_batches([obj])))
        raise _unsendable(obj)


def _unsendable(obj: Any) -> UnsendableValueError:
    return UnsendableValueError(
        f"cannot send a value of type {type_name(obj)}: send JSON-like data (dict, list, str, int, float, bool, "
        "None), NumPy arrays, pandas DataFrames/Series or Arrow tables"
    )


def _table_from_pandas(frame: Any) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise UnsendableValueError("sending a pandas DataFrame needs pyarrow, which is not installed") from None
    try:
        plain = _plain_columns(frame)
        if plain is not None:  # zero-copy: Arrow arrays over the columns' own memory
            return pa.table({name: pa.array(values) for name, values in plain.items()})
        return pa.Table.from_pandas(frame)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise UnsendableValueError(
            f"cannot send this pandas {type(frame).__name__} as an Arrow table ({e}); columns of mixed Python "
            "objects cannot be sent, convert them first (e.g. df[col].astype(str))"
        ) from None


def _plain_columns(frame: Any) -> dict[str, Any] | None:
    """The columns as NumPy arrays when nothing but them needs describing: a default RangeIndex, unique
    string labels and plain numeric/bool dtypes (then no pandas metadata is needed to rebuild the frame)."""
    import numpy as np
    import pandas as pd

    index = frame.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None):
        return None
    labels = list(frame.columns)
    if frame.columns.nlevels != 1 or frame.columns.name is not None or len(set(labels)) != len(labels):
        return None
    if not all(type(label) is str for label in labels):
        return None
    columns = {}
    for label in labels:
        dtype = frame.dtypes[label]
        if not (isinstance(dtype, np.dtype) and dtype.kind in "biuf"):
            return None
        columns[label] = frame[label].to_numpy()
    return columns


def _arrow_ipc(table: Any) -> Any:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()  # a pyarrow.Buffer: exposes the buffer protocol, no copy into bytes


def encode_text(value: Any, *, fallback: Callable[[Any], Any] | None = None) -> tuple[str, list[Buffer]]:
    """JSON text and binary buffers for ``value``; UnsendableValueError names a type that cannot travel.

    The text is what ``json.dumps(value, ensure_ascii=False)`` gives for plain data, so its length is the
    size the value would have in a model's context. ``fallback(obj)`` may turn other objects into JSON-like
    data (the host passes pydantic's ``to_jsonable_python``: dataclasses, models, enums, UUIDs).
    """
    try:  # plain JSON (the common case) goes through the C encoder without a hook
        return _plain_dumps(value), []
    except (TypeError, ValueError, RecursionError):
        pass
    encoder = _Encoder(fallback)
    try:
        text = json.dumps(value, default=encoder.default, ensure_ascii=False)
    except UnsendableValueError:
        raise
    except (TypeError, ValueError, RecursionError) as e:
        raise UnsendableValueError(f"cannot send this {type_name(value)}: {e}") from None
    return text, encoder.buffers


def encode(value: Any, *, fallback: Callable[[Any], Any] | None = None) -> tuple[bytes, list[Buffer]]:
    """UTF-8 JSON and binary buffers for ``value`` (see :func:`encode_text`)."""
    text, buffers = encode_text(value, fallback=fallback)
    return to_bytes(text), buffers


def to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # lone surrogates survive the round trip


_plain_dumps = json.JSONEncoder(ensure_ascii=False).encode


def nbytes(buffer: Buffer) -> int:
    return memoryview(buffer).nbytes


def decode(data: Buffer | str, buffers: Sequence[Buffer] = ()) -> Any:
    """The value encoded by :func:`encode`. Untrusted input: JSON, raw arrays and Arrow IPC only."""
    try:
        decoded = data if type(data) is str else text(data)
        if not buffers:
            return _plain_loads(decoded)
        return json.loads(decoded, object_hook=_Decoder(buffers).hook)
    except CodecError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MalformedDataError(f"not valid JSON ({e})") from None


_plain_loads = json.JSONDecoder().decode


class _Decoder:
    def __init__(self, buffers: Sequence[Buffer]) -> None:
        self.buffers = buffers

    def hook(self, obj: dict[str, Any]) -> Any:
        if MARKER not in obj:
            return obj
        index, kind = obj[MARKER], obj.get("kind")
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise MalformedDataError(f"buffer reference {index!r} is out of range")
        buffer = self.buffers[index]
        if kind == "ndarray":
            return decode_array(buffer, obj.get("dtype"), obj.get("shape"), obj.get("order", "C"))
        if kind == "arrow":
            return _read_ipc(buffer)
        if kind == "dataframe":
            return _read_ipc(buffer).to_pandas(use_threads=False)  # Arrow's pool would outlive the script
        if kind == "series":
            series = _read_ipc(buffer).to_pandas(use_threads=False)["__value__"]
            series.name = obj.get("name")
            return series
        raise MalformedDataError(f"unknown buffer kind {str(kind)[:40]!r}")


def decode_array(buffer: Buffer, dtype_text: Any, shape: Any, order: Any) -> Any:
    """A NumPy array over ``buffer`` (no copy), after checking dtype, shape and size. Never allows objects."""
    import numpy as np

    if not isinstance(dtype_text, str) or len(dtype_text) > 32:
        raise MalformedDataError("array dtype must be a short string")
    try:
        dtype = np.dtype(dtype_text)
    except (TypeError, ValueError):
        raise MalformedDataError(f"unknown array dtype {dtype_text!r}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in _ARRAY_KINDS or dtype.itemsize == 0:
        raise MalformedDataError(f"array dtype {dtype_text!r} is not allowed")
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_NDIM
        or not all(type(n) is int and n >= 0 for n in shape)
        or order not in ("C", "F")
    ):
        raise MalformedDataError("array shape must be a list of non-negative ints and order 'C' or 'F'")
    count = math.prod(shape)
    view = memoryview(buffer)
    if count * dtype.itemsize != view.nbytes:
        raise MalformedDataError(f"array of shape {shape} and dtype {dtype} does not fit {view.nbytes} bytes")
    flat = np.frombuffer(view, dtype=dtype, count=count)
    if order == "F":
        return flat.reshape(shape[::-1]).T
    return flat.reshape(shape)


def _read_ipc(buffer: Buffer) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise MalformedDataError("received an Arrow table but pyarrow is not installed") from None
    try:
        options = pa.ipc.IpcReadOptions(use_threads=False)
        table = pa.ipc.open_stream(pa.py_buffer(buffer), options=options).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise MalformedDataError(f"invalid Arrow IPC stream ({e})") from None
    return table
