"""The bridge codec: values as JSON plus binary buffers, messages framed on a stream. Never pickle."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import socket
import struct
import threading
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic_core import to_jsonable_python

from codeagent.sandbox.protocol import codec


def round_trip(value: Any, **kwargs: Any) -> Any:
    body, buffers = codec.encode(value, **kwargs)
    # what the receiver holds: fresh writable copies, as the frame decoder hands them over
    return codec.decode(bytearray(body), [bytearray(memoryview(b).cast("B")) for b in buffers])


# -- JSON values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        "",
        "héllo ☃ 😀 \u202e right-to-left \x00 nul",
        "lone surrogate \ud800 survives",
        [1, [2, [3, [4, {"deep": [None, False]}]]]],
        {"ünïcode kéy": {"nested": [{"a": 1}, {"b": [1.25, "x"]}]}, "empty": {}, "list": []},
    ],
)
def test_json_values_round_trip_exactly(value: Any) -> None:
    _, buffers = codec.encode(value)
    assert buffers == []
    assert round_trip(value) == value


def test_json_text_is_what_a_model_would_be_shown() -> None:
    value = {"note": "é" * 3, "n": [1, 2]}
    text, _ = codec.encode_text(value)
    assert text == json.dumps(value, ensure_ascii=False)


def test_tuples_sets_dates_and_numpy_scalars_become_json() -> None:
    value = {
        "t": (1, 2),
        "s": {3},
        "d": dt.date(2026, 10, 1),
        "ts": dt.datetime(2026, 10, 1, 12, 30),
        "i": np.int32(7),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "when": pd.Timestamp("2026-01-02"),
    }
    assert round_trip(value) == {
        "t": [1, 2],
        "s": [3],
        "d": "2026-10-01",
        "ts": "2026-10-01T12:30:00",
        "i": 7,
        "f": 0.5,
        "b": True,
        "when": "2026-01-02T00:00:00",
    }


def test_nan_and_infinity_round_trip() -> None:
    out = round_trip([float("nan"), float("inf"), -float("inf")])
    assert np.isnan(out[0]) and out[1:] == [float("inf"), -float("inf")]


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_a_fallback_converts_other_objects() -> None:
    with pytest.raises(codec.UnsendableValueError, match="Point"):
        codec.encode([Point(1, 2)])
    assert round_trip([Point(1, 2)], fallback=to_jsonable_python) == [{"x": 1, "y": 2}]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (object(), "object"),
        ({"f": lambda: 1}, "function"),
        ([1, Point(1, 2)], "test_codec.Point"),
        (b"bytes", "bytes"),
        (np.array([object(), 1], dtype=object), "dtype object"),
        (np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]), "structured"),
        ({(1, 2): "tuple key"}, "keys must be"),
    ],
)
def test_unsendable_values_name_their_type(value: Any, named: str) -> None:
    with pytest.raises(codec.UnsendableValueError, match=named) as err:
        codec.encode(value)
    assert isinstance(err.value, TypeError)


def test_a_dataframe_column_of_mixed_objects_is_refused_clearly() -> None:
    frame = pd.DataFrame({"mixed": [1, "two", object()]})
    with pytest.raises(codec.UnsendableValueError, match=r"DataFrame.*convert them first"):
        codec.encode(frame)


def test_circular_data_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(codec.UnsendableValueError, match="Circular"):
        codec.encode(loop)


# -- arrays and tables ----------------------------------------------------------------------------------

DTYPES = ["bool", "int8", "uint16", ">i4", "int64", "float16", "float32", ">f8", "complex128", "M8[ns]", "m8[s]"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_arrays_of_every_plain_dtype_round_trip(dtype: str) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.random((3, 5)) * 100).astype(dtype)
    out = round_trip(arr)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(24, dtype=np.int16).reshape(2, 3, 4),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.arange(100)[::7],  # not contiguous: copied once
        np.arange(12).reshape(3, 4).T,
        np.array(3.5),  # zero-dimensional
        np.zeros((0, 4)),
        np.array(["a", "ünï", ""]),
        np.array([b"x", b"yz"]),
    ],
)
def test_array_layouts_round_trip(arr: Any) -> None:
    out = round_trip(arr)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_arrays_nested_in_json_travel_as_buffers() -> None:
    value = {"weights": np.ones(1000), "meta": {"names": ["a"], "bias": np.float64(0.5)}, "list": [np.arange(3)]}
    body, buffers = codec.encode(value)
    assert len(buffers) == 2 and len(body) < 300  # the numbers are not in the JSON
    out = round_trip(value)
    np.testing.assert_array_equal(out["weights"], value["weights"])
    np.testing.assert_array_equal(out["list"][0], [0, 1, 2])
    assert out["meta"] == {"names": ["a"], "bias": 0.5}


def test_a_large_array_is_sent_without_copying() -> None:
    arr = np.arange(5_000_000, dtype=np.float64)
    _, [buffer] = codec.encode(arr)
    assert np.shares_memory(np.frombuffer(buffer, dtype=np.uint8), arr)
    np.testing.assert_array_equal(round_trip(arr), arr)


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "int": np.arange(6, dtype=np.int64),
            "small": np.arange(6, dtype=np.int8),
            "float": np.linspace(0, 1, 6),
            "bool": [True, False] * 3,
            "text": ["a", "ß", "中文", "", "😀", "z"],
            "maybe": [1.0, None, 3.0, None, 5.0, 6.0],
            "when": pd.date_range("2026-10-01", periods=6, freq="h", tz="Europe/Berlin"),
            "delta": pd.to_timedelta(np.arange(6), unit="s"),
            "cat": pd.Categorical(["x", "y", "x", "z", "y", "x"]),
            "nullable": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
        },
        index=pd.Index(["r1", "r2", "r3", "r4", "r5", "r6"], name="row"),
    )


def test_dataframes_with_mixed_dtypes_round_trip() -> None:
    frame = mixed_frame()
    out = round_trip(frame)
    pd.testing.assert_frame_equal(out, frame)
    out.loc["r1", "float"] = 42.0  # the copy the receiver gets is an ordinary, writable frame
    assert out.loc["r1", "float"] == 42.0 and frame.loc["r1", "float"] == 0.0


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": np.arange(4), "b": np.random.default_rng(1).random(4), "c": np.ones(4, bool)}),
        pd.DataFrame({"a": [1, 2]}, index=[10, 20]),
        pd.DataFrame({0: [1.0], 1: [2.0]}),
        pd.DataFrame({"a": np.arange(3)}, index=pd.RangeIndex(3, name="i")),
        pd.DataFrame(np.arange(6).reshape(2, 3), columns=pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 1)])),
        pd.DataFrame({"a": []}, dtype=float),
    ],
)
def test_dataframe_shapes_round_trip(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(round_trip(frame), frame)


def test_series_and_arrow_tables_round_trip() -> None:
    series = pd.Series([1.5, None, 3.0], name="price", index=["a", "b", "c"])
    pd.testing.assert_series_equal(round_trip(series), series)
    table = pa.table({"n": [1, 2, None], "s": ["x", None, "z"], "l": [[1], [], [2, 3]]})
    assert round_trip(table).equals(table)
    batch = table.to_batches()[0]
    assert round_trip(batch).equals(table)


# -- decoding untrusted data -----------------------------------------------------------------------------


def placeholder(**fields: Any) -> bytes:
    return json.dumps({codec.MARKER: 0, **fields}).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "ndarray", "dtype": "O", "shape": [1], "order": "C"},
        {"kind": "ndarray", "dtype": "|O", "shape": [1], "order": "C"},
        {"kind": "ndarray", "dtype": "i4,O", "shape": [1], "order": "C"},
        {"kind": "ndarray", "dtype": "V8", "shape": [1], "order": "C"},
        {"kind": "ndarray", "dtype": ["i4"], "shape": [1], "order": "C"},
        {"kind": "ndarray", "dtype": "f8", "shape": [3], "order": "C"},  # 8 bytes are not 3 floats
        {"kind": "ndarray", "dtype": "f8", "shape": [-1], "order": "C"},
        {"kind": "ndarray", "dtype": "f8", "shape": [1], "order": "X"},
        {"kind": "ndarray", "dtype": "f8", "shape": [1] * 65, "order": "C"},
        {"kind": "pickle"},
        {"kind": "arrow"},  # 8 bytes of zeros are not an Arrow stream
    ],
)
def test_malformed_buffer_references_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(codec.MalformedDataError):
        codec.decode(placeholder(**fields), [bytearray(8)])


def test_buffer_index_out_of_range_and_bad_json_are_refused() -> None:
    with pytest.raises(codec.MalformedDataError, match="out of range"):
        codec.decode(json.dumps({codec.MARKER: 3, "kind": "arrow"}).encode(), [bytearray(1)])
    with pytest.raises(codec.MalformedDataError):
        codec.decode(b"{not json")
    with pytest.raises(codec.MalformedDataError):
        codec.decode(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(codec.MalformedDataError):
        codec.decode(b'"\xff\xfe"')


def test_a_placeholder_without_buffers_stays_plain_data() -> None:
    raw = {codec.MARKER: 0, "kind": "ndarray", "dtype": "O", "shape": [1], "order": "C"}
    assert codec.decode(json.dumps(raw).encode()) == raw


# -- framing --------------------------------------------------------------------------------------------


def framed(parts: list[bytes]) -> bytes:
    return b"".join(bytes(b) for b in codec.wire_buffers(parts))


def test_messages_reassemble_from_any_chunking() -> None:
    rng = random.Random(4)
    messages = [
        [b"token", b'{"id":1}', b"{}"],
        [b"", b"x" * 300_000, b"y"],  # larger than the scratch buffer: received straight into its part
        [b"a" * 70_000, b"b" * (2 << 20)],  # a large part (numpy-backed buffer)
        [b"only"],
    ]
    stream = b"".join(framed(m) for m in messages)
    for _ in range(20):
        decoder = codec.FrameDecoder(max_bytes=10 << 20)
        got: list[list[bytes]] = []
        pos = 0
        while pos < len(stream):
            space = decoder.want()
            assert len(space) > 0
            n = min(len(space), rng.choice([1, 7, 100, 4096, 1 << 20]), len(stream) - pos)
            space[:n] = stream[pos : pos + n]
            pos += n
            got += [[bytes(p) for p in m] for m in decoder.advance(n)]
        assert got == messages
        assert decoder.idle


def test_the_decoder_checks_sizes_before_allocating() -> None:
    decoder = codec.FrameDecoder(max_bytes=1000, max_parts=4)
    header = b"CAB1" + struct.pack("<I", 2) + struct.pack("<2Q", 10, 1 << 40)
    space = decoder.want()
    space[: len(header)] = header
    with pytest.raises(codec.MessageTooLarge, match="exceeds the limit of 1000"):
        decoder.advance(len(header))
    for raw, message in [
        (b"XXXX" + struct.pack("<I", 1) + struct.pack("<Q", 0), "bad magic"),
        (b"CAB1" + struct.pack("<I", 5) + struct.pack("<5Q", *[0] * 5), "1 to 4 parts"),
        (b"CAB1" + struct.pack("<I", 0), "1 to 4 parts"),
    ]:
        decoder = codec.FrameDecoder(max_bytes=1000, max_parts=4)
        decoder.want()[: len(raw)] = raw
        with pytest.raises(codec.ProtocolError, match=message):
            decoder.advance(len(raw))


def test_frames_cross_a_real_socket() -> None:
    left, right = socket.socketpair()
    arr = np.arange(300_000, dtype=np.float64)
    body, buffers = codec.encode({"a": arr, "s": "ü"})

    def send() -> None:
        for part in codec.wire_buffers([b"t", body, *buffers]):
            left.sendall(part)
        left.close()

    sender = threading.Thread(target=send)
    sender.start()
    decoder = codec.FrameDecoder(max_bytes=1 << 30)
    messages = []
    while not messages:
        n = right.recv_into(decoder.want())
        assert n
        messages = decoder.advance(n)
    right.close()
    sender.join()
    [token, body_in, *buffers_in] = messages[0]
    assert bytes(token) == b"t"
    out = codec.decode(body_in, buffers_in)
    np.testing.assert_array_equal(out["a"], arr)
    assert out["s"] == "ü"
