"""Tools: fast argument validation, examples, direct tools, and the dispatcher behind the bridge."""

from __future__ import annotations

import ast
import asyncio
import json
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pydantic
import pytest

from codeagent.agent.prompt import direct_tool_definitions, system_prompt
from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.messages import BridgeRequest, Pending, Reply
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.records import ToolCallRecord
from codeagent.tools.registry import ToolArgumentError, ToolRegistry, make_tool


def plain(name: str, count: int, ratio: float = 0.5, flag: bool = False, tags: list | None = None) -> dict:
    """A tool with plain annotations only."""
    return {}


def anything(x, y: Any = None, items: list = [], table: dict = {}) -> None:  # noqa: B006 - defaults under test
    """Unannotated and Any parameters."""


def arrays(values: np.ndarray, frame: pd.DataFrame | None = None) -> None:
    """Array arguments."""


def pydantic_result(model: type[pydantic.BaseModel], args: Any) -> Any:
    try:
        validated = model.model_validate(args)
    except pydantic.ValidationError:
        return "invalid"
    return {name: getattr(validated, name) for name in model.model_fields}


@pytest.mark.parametrize("func", [plain, anything])
@pytest.mark.parametrize(
    "args",
    [
        {"name": "a", "count": 1},
        {"name": "a", "count": 1, "ratio": 2.0, "flag": True, "tags": ["x"]},
        {"name": "a", "count": 1, "ratio": 2},  # int for float: pydantic converts
        {"name": "a", "count": True},  # bool for int
        {"name": "a", "count": "3"},  # numeric string
        {"name": "a", "count": 1.0},
        {"name": 5, "count": 1},
        {"name": "a"},
        {"name": "a", "count": 1, "extra": 1},
        {"x": 1},
        {"x": [1, {"a": None}], "y": "s", "items": [1], "table": {"k": 1}},
        {"x": 1, "nope": 2},
        {},
    ],
)
def test_validation_gives_the_same_result_as_pydantic(func: Any, args: dict[str, Any]) -> None:
    tool = make_tool(func)
    assert tool._fast is not None  # these annotations take the fast path when the types match exactly
    expected = pydantic_result(tool.arguments_model, args)
    if expected == "invalid":
        with pytest.raises(ToolArgumentError):
            tool.validate(args)
    else:
        got = tool.validate(args)
        assert got == expected
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_mutable_defaults_are_not_shared_between_calls() -> None:
    tool = make_tool(anything)
    first = tool.validate({"x": 1})
    first["items"].append("changed")
    assert tool.validate({"x": 1})["items"] == []


def test_array_arguments_are_checked_by_type() -> None:
    tool = make_tool(arrays)
    arr = np.arange(3)
    assert tool.validate({"values": arr})["values"] is arr
    with pytest.raises(ToolArgumentError, match="values"):
        tool.validate({"values": [1, 2, 3]})


def constrained(n: Annotated[int, pydantic.Field(gt=0)], mode: Literal["a", "b"] = "a") -> None:
    """Constraints need pydantic."""


def test_constraints_always_go_through_pydantic() -> None:
    tool = make_tool(constrained)
    assert tool._fast is None
    assert tool.validate({"n": 2}) == {"n": 2, "mode": "a"}
    with pytest.raises(ToolArgumentError, match="greater than 0"):
        tool.validate({"n": 0})
    with pytest.raises(ToolArgumentError, match="mode"):
        tool.validate({"n": 1, "mode": "c"})


def test_arguments_must_be_an_object() -> None:
    with pytest.raises(ToolArgumentError, match="must be an object"):
        make_tool(plain).validate([1, 2])


# -- examples, modes, reserved names ----------------------------------------------------------------------


def get_expenses(member_id: str, month: str = "2026-10") -> list[dict]:
    """Expenses of one member."""
    return []


def test_examples_appear_in_the_stub_docstring_of_code_tools() -> None:
    tool = make_tool(get_expenses, examples=[{"member_id": "m-001"}, {"member_id": 'q"""uote', "month": "2026-09"}])
    source = tool.stub
    [func] = ast.parse(source).body
    assert isinstance(func, ast.FunctionDef)
    doc = ast.get_docstring(func) or ""
    assert "Examples:" in doc
    assert "get_expenses(member_id='m-001')" in doc
    assert "get_expenses(member_id='q\"\"\"uote', month='2026-09')" in doc
    assert len(func.body) == 2  # docstring and `...`: the example text stayed inside the string


def test_examples_must_match_the_parameters() -> None:
    with pytest.raises(ValueError, match="example 2 does not match"):
        make_tool(get_expenses, examples=[{"member_id": "a"}, {"member": "b"}])
    with pytest.raises(TypeError, match="example 1 must be a dict"):
        make_tool(get_expenses, examples=["m-1"])  # type: ignore[list-item]


def test_direct_tools_carry_input_examples_and_code_tools_are_not_offered() -> None:
    examples = [{"member_id": "m-001", "month": "2026-10"}]
    direct = make_tool(get_expenses, name="lookup", mode="direct", examples=examples)
    code = make_tool(get_expenses)
    [definition] = direct_tool_definitions([code, direct])
    assert definition["name"] == "lookup"
    assert definition["input_examples"] == examples
    assert definition["input_schema"]["required"] == ["member_id"]
    plain_direct = make_tool(get_expenses, name="plain_lookup", mode="direct")
    assert "input_examples" not in direct_tool_definitions([plain_direct])[0]


def test_the_anthropic_sdk_knows_the_input_examples_field() -> None:
    from anthropic.types import ToolParam

    assert "input_examples" in ToolParam.__annotations__


def test_reserved_names_and_bad_modes_are_refused() -> None:
    def set_result(x: int) -> None: ...

    with pytest.raises(ValueError, match="reserved"):
        make_tool(set_result)
    with pytest.raises(ValueError, match="mode"):
        make_tool(get_expenses, mode="sideways")  # type: ignore[arg-type]


def test_the_system_prompt_documents_async_calls_and_set_result() -> None:
    text = system_prompt([make_tool(get_expenses)], "## Data\n- `df`: pandas.DataFrame")
    assert "get_expenses.aio" not in text  # the generic form is shown, not one per tool
    assert "`name.aio(...)`" in text and "asyncio.gather" in text
    assert "set_result(value)" in text
    assert "## Data\n- `df`" in text
    assert "name.aio" not in system_prompt([])  # no tools: nothing to call asynchronously
    assert "set_result(value)" in system_prompt([])


# -- the dispatcher ---------------------------------------------------------------------------------------


def request(tool: str | None, args: Any = None, op: str = "call", req_id: int = 7) -> BridgeRequest:
    head: dict[str, Any] = {"id": req_id, "op": op}
    if tool is not None:
        head["tool"] = tool
    body, buffers = codec.encode({} if args is None else args)
    return BridgeRequest(head, bytearray(body), [bytearray(memoryview(b).cast("B")) for b in buffers])


def value_of(reply: Reply | Pending) -> Any:
    assert isinstance(reply, Reply)
    assert reply.head["ok"], reply.head
    return codec.decode(reply.body, reply.buffers)


def error_of(reply: Reply | Pending) -> tuple[str, str]:
    assert isinstance(reply, Reply)
    assert reply.head["ok"] is False
    return reply.head["error"]["type"], reply.head["error"]["message"]


@pytest.fixture
def tools() -> ToolRegistry:
    registry = ToolRegistry()

    def add(a: int, b: int = 1) -> int:
        return a + b

    def scale(values: np.ndarray, by: float) -> np.ndarray:
        return values * by

    def broken(key: str) -> str:
        raise KeyError(key)

    def unsendable() -> Any:
        return object()

    async def later(x: int) -> dict:
        await asyncio.sleep(0)
        return {"x": x}

    for f in (add, scale, broken, unsendable, later):
        registry.add(make_tool(f))
    return registry


def test_sync_tools_answer_at_once_and_are_recorded(tools: ToolRegistry) -> None:
    calls: list[ToolCallRecord] = []
    dispatcher = ToolDispatcher(tools, calls.append)
    reply = dispatcher.begin(request("add", {"a": 2, "b": 3}))
    assert value_of(reply) == 5 and reply.head["id"] == 7
    assert calls == []  # reported after the reply was sent, so the script does not wait for the trace
    dispatcher.report()
    assert calls[0].name == "add" and calls[0].arguments == {"a": 2, "b": 3}
    assert calls[0].result_preview == "5" and calls[0].result_chars == 1 and calls[0].error is None


def test_arrays_travel_both_ways_through_the_dispatcher(tools: ToolRegistry) -> None:
    calls: list[ToolCallRecord] = []
    dispatcher = ToolDispatcher(tools, calls.append)
    reply = dispatcher.begin(request("scale", {"values": np.arange(4.0), "by": 2.0}))
    dispatcher.report()
    assert isinstance(reply, Reply) and len(reply.buffers) == 1
    np.testing.assert_array_equal(value_of(reply), [0.0, 2.0, 4.0, 6.0])
    assert calls[0].result_preview == "ndarray float64 shape (4,)"
    assert calls[0].result_chars >= 32


def test_errors_keep_their_type_and_message(tools: ToolRegistry) -> None:
    calls: list[ToolCallRecord] = []
    dispatcher = ToolDispatcher(tools, calls.append)
    assert error_of(dispatcher.begin(request("broken", {"key": "k"}))) == ("KeyError", "k")
    assert error_of(dispatcher.begin(request("add", {"a": "x"})))[0] == "TypeError"
    kind, message = error_of(dispatcher.begin(request("unsendable")))
    assert kind == "ToolValueError" and "builtins.object" not in message and "type object" in message
    dispatcher.report()
    assert [c.error.split(":")[0] for c in calls if c.error] == ["KeyError", "TypeError", "ToolValueError"]


def test_unknown_tools_and_operations_run_nothing(tools: ToolRegistry) -> None:
    calls: list[ToolCallRecord] = []
    dispatcher = ToolDispatcher(tools, calls.append)
    assert error_of(dispatcher.begin(request("eval", {"a": 1})))[0] == "NameError"
    assert error_of(dispatcher.begin(request(None)))[0] == "NameError"
    assert error_of(dispatcher.begin(request("add", {"a": 1}, op="exec")))[0] == "ValueError"
    bad = BridgeRequest({"id": 1, "op": "call", "tool": "add"}, bytearray(b"{not json"))
    assert error_of(dispatcher.begin(bad))[0] == "TypeError"
    dispatcher.report()
    assert [c.name for c in calls] == ["add"]  # only the malformed-arguments call got as far as a record
    assert calls[0].error and calls[0].error.startswith("TypeError")


def test_async_tools_come_back_as_a_coroutine_to_run(tools: ToolRegistry) -> None:
    calls: list[ToolCallRecord] = []
    dispatcher = ToolDispatcher(tools, calls.append)
    pending = dispatcher.begin(request("later", {"x": 3}))
    assert isinstance(pending, Pending)
    value = asyncio.run(pending.coroutine)
    assert value_of(pending.finish(value, None)) == {"x": 3}
    assert error_of(pending.finish(None, asyncio.CancelledError("stopped")))[0] == "CancelledError"
    assert calls == []  # recorded when it finishes, reported after the reply
    dispatcher.report()
    assert len(calls) == 2


def test_set_result_keeps_the_decoded_value(tools: ToolRegistry) -> None:
    dispatcher = ToolDispatcher(tools)
    assert not dispatcher.result_set
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert value_of(dispatcher.begin(request(None, frame, op="result"))) is None
    assert dispatcher.result_set
    pd.testing.assert_frame_equal(dispatcher.result_value, frame)
    evil = BridgeRequest(
        {"id": 1, "op": "result"},
        bytearray(json.dumps({codec.MARKER: 0, "kind": "ndarray", "dtype": "O", "shape": [1]}).encode()),
        [bytearray(8)],
    )
    assert error_of(dispatcher.begin(evil))[0] == "MalformedDataError"
    pd.testing.assert_frame_equal(dispatcher.result_value, frame)


def test_direct_calls_still_get_json_text(tools: ToolRegistry) -> None:
    calls: list[ToolCallRecord] = []
    reply = ToolDispatcher(tools, calls.append).call("toolu_1", "later", {"x": 1})  # an async def tool
    assert (reply.head, reply.text, reply.buffers) == ({"id": "toolu_1", "ok": True}, '{"x": 1}', [])
    assert [(c.name, c.arguments, c.result_preview, c.error) for c in calls] == [("later", {"x": 1}, '{"x": 1}', None)]
    reply = ToolDispatcher(tools).call("toolu_2", "nope", {})
    assert not reply.ok and reply.head["error"]["type"] == "NameError"
    assert reply.error_text == "NameError: no tool named 'nope' is registered"


def test_direct_and_script_calls_take_the_same_path(tools: ToolRegistry) -> None:
    """Validation errors and the record look the same whether the model or a script made the call."""
    direct: list[ToolCallRecord] = []
    script: list[ToolCallRecord] = []
    by_model = ToolDispatcher(tools, direct.append).call("toolu_3", "later", {"x": "not an int"})
    script_dispatcher = ToolDispatcher(tools, script.append)
    by_script = script_dispatcher.begin(
        BridgeRequest({"id": 7, "op": "call", "tool": "later"}, json.dumps({"x": "not an int"}).encode())
    )
    script_dispatcher.report()  # what the bridge does once the reply is sent
    assert isinstance(by_script, Reply)
    assert by_model.head["error"] == by_script.head["error"] and by_model.head["error"]["type"] == "TypeError"
    assert [(r.name, r.arguments, r.error) for r in direct] == [(r.name, r.arguments, r.error) for r in script]


def test_tool_decorator_uses_an_empty_registry_it_is_given() -> None:
    from codeagent.tools.registry import ToolRegistry, default_registry, tool

    mine = ToolRegistry()
    before = len(default_registry)

    @tool(registry=mine)
    def only_here(x: int) -> int:
        """Only in my registry."""
        return x

    assert "only_here" in mine and "only_here" not in default_registry and len(default_registry) == before
