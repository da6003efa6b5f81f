"""``CodeAgent.notebook_context = "names"``: the notebook's data variables as names, types and shapes, never values."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

MAX_VARIABLES = 20
MAX_COLUMNS = 8
MAX_NAME_CHARS = 40

HEADER = (
    "## Other variables in the notebook\n"
    "The notebook also holds these (names, types and shapes only; you cannot see their contents). They are NOT "
    "defined in the sandbox. If the question needs one of them, do not guess: answer by asking the user to "
    "mention it in the question as `@name`, which hands it to the sandbox."
)


_DATA_TYPES = {
    ("pandas", "DataFrame"),
    ("polars", "DataFrame"),
    ("pandas", "Series"),
    ("polars", "Series"),
    ("numpy", "ndarray"),
    ("pyarrow", "Table"),
    ("pyarrow", "RecordBatch"),
}


def is_data(value: Any) -> bool:
    """A DataFrame, Series, array or table (by type name only: cheap, and imports nothing)."""
    kind = type(value)
    return (kind.__module__.partition(".")[0], kind.__name__) in _DATA_TYPES


def describe_shape(value: Any) -> str | None:
    """``pandas.DataFrame, 1,000 rows × 4 columns (a, b, …)`` for DataFrames, Series, arrays and Arrow/polars
    tables; None for anything else. Reads only type, shape, dtype and column names."""
    kind = type(value)
    root, name = kind.__module__.partition(".")[0], kind.__name__
    if root in ("pandas", "polars") and name == "DataFrame":
        rows, cols = value.shape
        return f"{root}.DataFrame, {rows:,} rows × {cols:,} columns ({_column_names(value.columns)})"
    if root in ("pandas", "polars") and name == "Series":
        return f"{root}.Series {_short(str(value.name))!r}, {len(value):,} values, dtype {value.dtype}"
    if root == "numpy" and name == "ndarray":
        return f"numpy.ndarray, shape {tuple(value.shape)}, dtype {value.dtype}"
    if root == "pyarrow" and name in ("Table", "RecordBatch"):
        return (
            f"pyarrow.{name}, {value.num_rows:,} rows × {value.num_columns:,} columns "
            f"({_column_names(value.schema.names)})"
        )
    return None


def _short(text: str) -> str:
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"


def _column_names(columns: Iterable[Any]) -> str:
    names = [_short(str(c)) for c in list(columns)[: MAX_COLUMNS + 1]]
    shown = ", ".join(names[:MAX_COLUMNS])
    return shown + ", …" if len(names) > MAX_COLUMNS else shown


def listed_variables(
    namespace: Mapping[str, Any], exclude: Container[str] = (), max_variables: int = MAX_VARIABLES
) -> tuple[list[tuple[str, str]], int]:
    """The data variables the context lists, as ``(name, description)``, and how many more it leaves out.

    ``exclude``: names not to list (hidden IPython names, tools, variables already handed to the sandbox).
    """
    listed: list[tuple[str, str]] = []
    more = 0
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in exclude or not is_data(value):
            continue
        if len(listed) >= max_variables:
            more += 1
            continue
        try:
            text = describe_shape(value)
        except Exception:  # a half-built or exotic object: leave it out rather than break the call
            continue
        if text is not None:
            listed.append((name, text))
    return listed, more


def notebook_context(
    namespace: Mapping[str, Any], exclude: Container[str] = (), max_variables: int = MAX_VARIABLES
) -> str:
    """The system-prompt section listing the notebook's data variables (at most ``max_variables`` lines)."""
    listed, more = listed_variables(namespace, exclude, max_variables)
    if not listed:
        return ""
    lines = [f"- `{name}`: {text}" for name, text in listed]
    if more:
        lines.append(f"- … and {more} more")
    return HEADER + "\n\n" + "\n".join(lines)
