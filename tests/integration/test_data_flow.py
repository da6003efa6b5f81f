"""Notebook data in (``--data``/``--sample``), results out (``set_result`` → ``result.value`` / ``-o``),
and direct tools, through the magic, the real SDK, the local Messages API and a real sandbox kernel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from codeagent.agent.trace import CodeAgentResult
from codeagent.kernel_ext.data import describe_variables
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, last_tool_result, text_turn, tool_turn
from codeagent.tools import tool

ROWS = 1000


def orders_frame() -> pd.DataFrame:
    """Each row carries a value that appears nowhere else, so a leaked row is easy to spot."""
    return pd.DataFrame(
        {
            "order_ref": [f"ORDREF-{i:05d}-X" for i in range(ROWS)],
            "region": ["north", "south", "east", "west"] * (ROWS // 4),
            "amount": np.round(np.linspace(1.25, 999.75, ROWS), 2),
            "placed": pd.date_range("2026-01-01", periods=ROWS, freq="h"),
        }
    )


def echo_output(body: dict[str, Any]) -> Turn:
    return text_turn("Script said: " + last_tool_result(body))


def run_magic(shell: Any, line: str) -> CodeAgentResult:
    with capture_output():
        return shell.run_line_magic("codeagent", line)


@pytest.fixture
def notebook_data(shell: Any) -> Iterator[dict[str, Any]]:
    """Variables in the notebook the test can hand in; removed afterwards."""
    data = {
        "orders": orders_frame(),
        "prices": np.arange(12.0).reshape(4, 3) * 1.5,
        "settings": {"currency": "EUR", "limits": [100, 200]},
    }
    shell.user_ns.update(data)
    yield data
    for name in [*data, "res", "answer_obj"]:
        shell.user_ns.pop(name, None)


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in body["system"])


def test_data_goes_in_as_schema_only_and_the_result_comes_out(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, notebook_data: dict[str, Any]
) -> None:
    script = (
        "print(type(orders).__name__, orders.shape, str(orders['placed'].dtype))\n"
        "print('total', round(float(orders['amount'].sum()), 2))\n"
        "print('prices', prices.shape, float(prices.sum()))\n"
        "print('currency', settings['currency'])\n"
        "top = orders.groupby('region', as_index=False)['amount'].sum().sort_values('amount', ascending=False)\n"
        "set_result(top)\n"
        "print('handed back', len(top))\n"
    )
    model_server.add_turns(code_turn(script), echo_output)
    result = run_magic(shell, "--data orders,prices,settings -o res Which region sells most?")

    assert result.status == "done", result.error
    frame = notebook_data["orders"]
    output = result.scripts[0].output
    assert "DataFrame (1000, 4) datetime64" in output
    assert f"total {round(float(frame['amount'].sum()), 2)}" in output
    assert f"prices (4, 3) {float(notebook_data['prices'].sum())}" in output
    assert "currency EUR" in output and "handed back 4" in output

    # The value set in the sandbox is the notebook's result, under -o too.
    expected = frame.groupby("region", as_index=False)["amount"].sum().sort_values("amount", ascending=False)
    assert shell.user_ns["res"] is result
    pd.testing.assert_frame_equal(result.value, expected)

    # The model saw the schema: names, types, shape, columns and dtypes; but not one row.
    first = model_server.message_requests[0]
    system = system_text(first)
    assert "- `orders`: pandas.DataFrame, 1,000 rows × 4 columns" in system
    for column, dtype in [("order_ref", "str"), ("region", "str"), ("amount", "float64"), ("placed", "datetime64")]:
        assert f"      {column}: {dtype}" in system
    assert "- `prices`: numpy.ndarray, shape (4, 3), dtype float64" in system
    assert "- `settings`: dict of 2 entries" in system
    everything_sent = json.dumps(model_server.message_requests)
    assert "ORDREF-" not in everything_sent
    assert "EUR" not in everything_sent.replace("currency EUR", "")  # only via what the script printed
    assert "first 0 rows" not in system and "rows:" not in system


def test_sample_shows_the_first_rows_and_no_more(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, notebook_data: dict[str, Any]
) -> None:
    model_server.add_turns(text_turn("I looked at the sample."))
    result = run_magic(shell, "--data orders,prices --sample 3 What do the rows look like?")

    assert result.status == "done", result.error
    system = system_text(model_server.message_requests[0])
    for i in range(3):
        assert f"ORDREF-{i:05d}-X" in system
    assert "ORDREF-00003-X" not in json.dumps(model_server.message_requests)
    assert "first 3 rows:" in system
    assert "[ 9.  10.5 12. ]]" in system and "13.5" not in system  # three of the array's four rows


def test_data_replaces_stale_copies_in_the_sandbox(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, notebook_data: dict[str, Any]
) -> None:
    model_server.add_turns(code_turn("print('n =', len(orders))"), echo_output)
    run_magic(shell, "--data orders How many orders?")
    shell.user_ns["orders"] = notebook_data["orders"].head(7)
    model_server.add_turns(code_turn("print('n =', len(orders))"), echo_output)
    result = run_magic(shell, "--data orders And now?")
    assert "n = 7" in result.scripts[0].output


def test_data_usage_errors_are_short(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, notebook_data: dict[str, Any]
) -> None:
    @tool
    def lookup(key: str) -> str:
        return key

    shell.user_ns["handle"] = open  # a builtin function: no way to send it
    try:
        cases = {
            "--data nothing_here Q?": "no notebook variable named nothing_here",
            "--data orders,orders Q?": "names a variable twice",
            "--data 'not a name' Q?": "is not one",
            "--sample 2 Q?": "--sample needs --data",
            "--data orders --sample -1 Q?": "--sample takes a number",
            "--data handle Q?": "cannot send a value of type builtin_function_or_method",
        }
        for line, message in cases.items():
            with pytest.raises(UsageError, match=message):
                shell.run_line_magic("codeagent", line)
        shell.user_ns["lookup"] = "a string that would shadow the tool"
        with pytest.raises(UsageError, match="already has a tool or function of that name"):
            shell.run_line_magic("codeagent", "--data lookup Q?")
    finally:
        shell.user_ns.pop("handle", None)
        shell.user_ns.pop("lookup", None)
    assert model_server.message_requests == []  # refused before the model was asked


def test_direct_tools_are_offered_with_examples_and_answered(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    seen: list[str] = []

    @tool(mode="direct", examples=[{"code": "EUR"}])
    def exchange_rate(code: str) -> dict:
        """Today's rate of a currency against the dollar."""
        seen.append(code)
        return {"code": code, "rate": 1.08}

    @tool(examples=[{"member_id": "m-001", "month": "2026-10"}])
    def get_expenses(member_id: str, month: str) -> list[dict]:
        """Expenses of one member in a month."""
        return []

    model_server.add_turns(tool_turn("exchange_rate", {"code": "EUR"}), text_turn("1 EUR is 1.08 USD."))
    result = run_magic(shell, "What is the euro worth?")

    assert result.status == "done", result.error
    assert seen == ["EUR"]
    first, second = model_server.message_requests
    [direct] = [t for t in first["tools"] if t["name"] == "exchange_rate"]
    assert direct["input_examples"] == [{"code": "EUR"}]
    assert direct["input_schema"]["properties"]["code"]["type"] == "string"
    assert "get_expenses" not in [t["name"] for t in first["tools"]]  # code tools are only in the script
    assert "get_expenses(member_id='m-001', month='2026-10')" in system_text(first)
    assert json.loads(last_tool_result(second)) == {"code": "EUR", "rate": 1.08}
    assert [c.name for c in result.tool_calls] == ["exchange_rate"]


def test_describe_variables_covers_the_supported_types() -> None:
    import pyarrow as pa

    namespace = {
        "frame": orders_frame().set_index("order_ref"),
        "series": pd.Series([1.5, 2.5], name="price"),
        "table": pa.table({"n": [1, 2], "s": ["a", "b"]}),
        "rows": [{"id": 1, "name": "SECRET-NAME"}, {"id": 2, "name": "x"}],
        "text": "line one\nSECRET-LINE",
        "number": 31337,
    }
    schema = describe_variables(list(namespace), namespace)
    assert "index: Index 'order_ref', dtype str" in schema
    assert "- `series`: pandas.Series 'price', 2 values, dtype float64" in schema
    assert "- `table`: pyarrow.Table, 2 rows × 2 columns" in schema and "      s: string" in schema
    assert "- `rows`: list of 2 items (dict), keys: id, name" in schema
    assert "- `text`: str of 20 characters, 2 lines" in schema
    assert "- `number`: int" in schema
    for secret in ("SECRET", "31337", "ORDREF"):
        assert secret not in schema
    sampled = describe_variables(["rows", "number", "text"], namespace, sample=1)
    assert "SECRET-NAME" in sampled and "31337" in sampled and "line one" in sampled
    assert "SECRET-LINE" not in sampled
