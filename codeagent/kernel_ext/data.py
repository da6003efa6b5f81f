"""Notebook variables handed to the sandbox with ``%codeagent --data df,prices``.

The model is shown each variable's schema (type, shape, columns and dtypes), never its rows unless the user
asks for ``--sample N``. The values travel over the tool bridge (JSON, NumPy arrays, Arrow IPC) into the
sandbox under the same names.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from codeagent.tools.dispatch import ToolDispatcher, UnsendableData
from codeagent.tools.registry import RESERVED_NAMES

MAX_COLUMNS_SHOWN = 100
SAMPLE_CHARS = 4000

HEADER = (
    "## Data from the notebook\n"
    "These variables are already defined in the sandbox under these names (copies of the notebook's). You see "
    "their schema, not their contents: work on them in the script and print only what the answer needs."
)


class DataError(ValueError):
    """A ``--data`` name or value that cannot be handed to the sandbox."""


class _Sandbox(Protocol):
    def execute(self, code: str, handler: Any, *, silent: bool = False) -> Any: ...


def parse_names(text: str) -> list[str]:
    """``"df, prices"`` → ``["df", "prices"]``; each must be a Python identifier, each once."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DataError("--data needs variable names, e.g. --data df,prices")
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise DataError(f"--data takes variable names separated by commas; {name!r} is not one")
    if len(set(names)) != len(names):
        raise DataError("--data names a variable twice")
    return names


def lookup(names: Iterable[str], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``names`` in the notebook's namespace; DataError for a missing one."""
    missing = [n for n in names if n not in namespace]
    if missing:
        raise DataError(f"--data: no notebook variable named {', '.join(missing)}")
    return {n: namespace[n] for n in names}


# -- what the model sees ---------------------------------------------------------------------------------


def describe_variables(
    names: Iterable[str], namespace: Mapping[str, Any], sample: int = 0, notes: Mapping[str, str] | None = None
) -> str:
    """The system-prompt section for these variables: schema only, plus ``sample`` rows each when asked.

    ``notes``: a few words after a variable's first line (why it was handed over, when the user did not say).
    """
    values = lookup(list(names), namespace)
    if not values:
        return ""
    blocks = []
    for name, value in values.items():
        block = describe_variable(name, value, sample)
        note = (notes or {}).get(name)
        if note:
            first, _, rest = block.partition("\n")
            block = f"{first} ({note})" + (f"\n{rest}" if rest else "")
        blocks.append(block)
    return HEADER + "\n\n" + "\n".join(blocks)


def describe_variable(name: str, value: Any, sample: int = 0) -> str:
    """``- `name`: type, shape`` and its columns/dtypes (and the first ``sample`` rows when asked)."""
    kind = type(value)
    qualified = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    root = kind.__module__.partition(".")[0]
    lines: list[str]
    rows = ""
    if root == "pandas" and kind.__name__ == "DataFrame":
        lines = [f"- `{name}`: pandas.DataFrame, {len(value):,} rows × {value.shape[1]:,} columns"]
        lines += _columns((str(c), str(t)) for c, t in value.dtypes.items())
        lines.append(f"    index: {_index_text(value.index)}")
        if sample:
            rows = value.head(sample).to_string(max_cols=MAX_COLUMNS_SHOWN, max_colwidth=60)
    elif root == "pandas" and kind.__name__ == "Series":
        lines = [f"- `{name}`: pandas.Series {value.name!r}, {len(value):,} values, dtype {value.dtype}"]
        lines.append(f"    index: {_index_text(value.index)}")
        if sample:
            rows = value.head(sample).to_string()
    elif root == "numpy" and kind.__name__ == "ndarray":
        lines = [f"- `{name}`: numpy.ndarray, shape {tuple(value.shape)}, dtype {value.dtype}"]
        if sample:
            import numpy as np

            rows = np.array2string(value[:sample] if value.ndim else value, threshold=sample * 50)
    elif root == "pyarrow" and kind.__name__ in ("Table", "RecordBatch"):
        lines = [f"- `{name}`: pyarrow.{kind.__name__}, {value.num_rows:,} rows × {value.num_columns:,} columns"]
        lines += _columns((f.name, str(f.type)) for f in value.schema)
        if sample:
            rows = value.slice(0, sample).to_pandas().to_string(max_cols=MAX_COLUMNS_SHOWN, max_colwidth=60)
    elif isinstance(value, (list, tuple)):
        lines = [f"- `{name}`: {kind.__name__} of {len(value):,} items{_items_text(value)}"]
        if sample:
            rows = "\n".join(repr(item) for item in value[:sample])
    elif isinstance(value, dict):
        lines = [f"- `{name}`: dict of {len(value):,} entries{_mapping_text(value)}"]
        if sample:
            rows = "\n".join(f"{k!r}: {v!r}" for k, v in list(value.items())[:sample])
    elif isinstance(value, str):
        lines = [f"- `{name}`: str of {len(value):,} characters, {value.count(chr(10)) + 1:,} lines"]
        if sample:
            rows = "\n".join(value.splitlines()[:sample])
    else:
        lines = [f"- `{name}`: {qualified}"]
        if sample:
            rows = repr(value)
    if rows:
        if len(rows) > SAMPLE_CHARS:
            rows = rows[:SAMPLE_CHARS] + f"\n… ({len(rows) - SAMPLE_CHARS} more characters)"
        lines.append(f"    first {sample} rows:")
        lines += [f"      {line}" for line in rows.splitlines()]
    return "\n".join(lines)


def _columns(pairs: Iterable[tuple[str, str]]) -> list[str]:
    pairs = list(pairs)
    shown = [f"    {c}: {t}" for c, t in pairs[:MAX_COLUMNS_SHOWN]]
    if len(pairs) > MAX_COLUMNS_SHOWN:
        shown.append(f"    … {len(pairs) - MAX_COLUMNS_SHOWN} more columns")
    return ["    columns:", *[f"  {line}" for line in shown]] if shown else []


def _index_text(index: Any) -> str:
    name = f" {index.name!r}" if index.name is not None else ""
    return f"{type(index).__name__}{name}, dtype {index.dtype}"


def _type_names(values: Iterable[Any]) -> str:
    return ", ".join(sorted({type(v).__name__ for v in values}))


def _items_text(items: Any) -> str:
    head = list(items[:100])
    if not head:
        return ""
    text = f" ({_type_names(head)})"
    if all(isinstance(v, dict) for v in head):
        keys = list(dict.fromkeys(k for v in head for k in v))[:MAX_COLUMNS_SHOWN]
        text += f", keys: {', '.join(str(k) for k in keys)}"
    return text


def _mapping_text(mapping: dict[Any, Any]) -> str:
    head = list(mapping.items())[:100]
    if not head:
        return ""
    return f" (keys: {_type_names(k for k, _ in head)}; values: {_type_names(v for _, v in head)})"


# -- moving the values ------------------------------------------------------------------------------------


def send_variables(sandbox: _Sandbox, values: Mapping[str, Any]) -> None:
    """Define each variable in the sandbox under its name (a copy, through the bridge)."""
    try:
        handler = ToolDispatcher.for_data(values)
    except UnsendableData as e:
        raise DataError(f"--data {e.name}: {e.reason}") from None
    names = list(values)
    code = (
        "import codeagent.sandbox.guest.runtime as _ca_runtime\n"
        f"_ca_runtime.load_data({names!r}, globals())\n"
        "del _ca_runtime\n"
    )
    result = sandbox.execute(code, handler, silent=True)
    if result.status != "ok" or sorted(handler.served) != sorted(names):
        raise DataError(f"could not hand {', '.join(names)} to the sandbox: {result.output.strip()[-800:]}")


def hand_over(
    sandbox: _Sandbox,
    names: Iterable[str],
    namespace: Mapping[str, Any],
    sample: int = 0,
    reserved: Iterable[str] = (),
    notes: Mapping[str, str] | None = None,
) -> str:
    """Send ``names`` from ``namespace`` into the sandbox; returns the system-prompt section describing them.

    ``reserved`` are names the sandbox defines itself (the tools): a variable may not take one. ``notes``: see
    :func:`describe_variables`.
    """
    names = list(names)
    if sample < 0:
        raise DataError("--sample takes a number of rows (0 or more)")
    taken = [n for n in names if n in {*reserved, *RESERVED_NAMES}]
    if taken:
        raise DataError(f"--data {', '.join(taken)}: the sandbox already has a tool or function of that name")
    values = lookup(names, namespace)
    section = describe_variables(names, namespace, sample, notes)
    send_variables(sandbox, values)
    return section
