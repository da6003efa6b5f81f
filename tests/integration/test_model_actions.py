"""Weak-model replies through the real magic: every form a script can come in, the corrective turn, the
repeated-script ending and --answer-from-output (real SDK → local Messages API → sandbox kernel → tools)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from codeagent.agent.actions import MAX_NAMED_TOOLS
from codeagent.agent.trace import CodeAgentResult
from codeagent.kernel_ext.magic import final_view
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, text_turn, tool_turn
from codeagent.tools import make_tool, tool

PRICES = {"AAPL": 190.5, "MSFT": 412.25}
TOTAL = "2632.75"
SCRIPT = "print(3 * get_price('AAPL') + 5 * get_price('MSFT'))"
QUESTION = "What is the total value of 3 shares of AAPL plus 5 shares of MSFT?"


@pytest.fixture
def price_tool(registry: Any) -> Any:
    @tool
    def get_price(ticker: str) -> float:
        """Latest price of one share in USD."""
        return PRICES[ticker]

    return get_price


def ask(shell: Any, line: str = QUESTION) -> tuple[CodeAgentResult, Any]:
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", line)
    return result, captured


def last_user(body: dict[str, Any]) -> Any:
    return body["messages"][-1]["content"]


def answer_with_output(body: dict[str, Any]) -> Turn:
    """A model that answers with the number its script printed (from a tool_result or a text message)."""
    content = last_user(body)
    text = content if isinstance(content, str) else "".join(str(b.get("content", "")) for b in content)
    return text_turn(f"The total is {TOTAL} USD." if TOTAL in text else "I could not find the total.")


def test_execute_python_tool_use(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn(SCRIPT), answer_with_output)
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    assert [s.read_as for s in result.steps] == ["script (tool_use)", ""]
    tool_result = last_user(model_server.requests[1])[0]
    assert tool_result["type"] == "tool_result" and tool_result["content"].strip() == TOTAL


def test_fenced_python_block_in_text_runs_as_the_script(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn(f"Let me compute it:\n```python\n{SCRIPT}\n```\n"), answer_with_output)
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    assert len(result.scripts) == 1 and result.scripts[0].code.strip() == SCRIPT
    assert [c.name for c in result.tool_calls] == ["get_price", "get_price"]
    # No tool_use came, so the output goes back as a user text message (CodeAct style).
    assert last_user(model_server.requests[1]) == f"Output of your script:\n{TOTAL}\n"
    assert result.steps[0].read_as == "script (fenced)"


def test_json_tool_call_in_text_becomes_a_call(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    """The reply seen from Qwen2.5-Coder-1.5B: a ```json block naming a tool, no tool_use, no script."""
    seen = '```json\n{ "name": "get_price", "arguments": { "ticker": "AAPL" } }\n```'
    model_server.add_turns(text_turn(seen), text_turn("AAPL costs 190.5 USD."))
    result, _ = ask(shell, "What does one AAPL share cost?")
    assert result.status == "done" and result.answer == "AAPL costs 190.5 USD."
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_price", {"ticker": "AAPL"})]
    told = last_user(model_server.requests[1])
    assert "get_price(ticker='AAPL') -> 190.5" in told and "call `execute_python`" in told


def test_a_script_in_json_with_python_triple_quotes_runs(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    """Seen from Qwen2.5-Coder-1.5B in the eval: execute_python as JSON text, its code in \"\"\" quotes."""
    code = '"""\n' + SCRIPT + '\n"""'
    seen = '```json\n{\n  "name": "execute_python",\n  "arguments": {\n    "code": ' + code + "\n  }\n}\n```"
    model_server.add_turns(text_turn(seen), answer_with_output)
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    assert result.scripts[0].code.strip() == SCRIPT and result.steps[0].read_as == "script (json)"


def test_json_naming_an_unknown_tool_gets_a_clear_correction(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(
        text_turn('{"name": "lookup_price", "arguments": {"symbol": "AAPL"}}'), code_turn(SCRIPT), answer_with_output
    )
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    correction = last_user(model_server.requests[1])
    assert "There is no tool named 'lookup_price'" in correction and "get_price" in correction
    assert [s.read_as for s in result.steps][:2] == ["correction", "script (tool_use)"]


def test_among_many_tools_the_correction_names_the_closest_few(
    shell: Any, model_server: MessagesServer, price_tool: Any, registry: Any, fresh_conversation: None
) -> None:
    """A small model guesses a tool name instead of searching; at scale the correction must not list them all."""
    for i in range(60):
        registry.add(make_tool(lambda account: [], name=f"ledger_entry_{i}", description=f"Ledger entries {i}."))
    model_server.add_turns(
        text_turn('{"name": "lookup_share_price", "arguments": {"symbol": "AAPL"}}'),
        code_turn(SCRIPT),
        answer_with_output,
    )
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    correction = last_user(model_server.requests[1])
    named = correction.split("you can call these functions: ")[1].split(" (the closest")[0].split(", ")
    assert named[0] == "get_price" and len(named) == MAX_NAMED_TOOLS, correction
    assert "(the closest of 61; `search_tools(query)` finds others)" in correction


def test_a_tool_use_of_an_unknown_name_is_told_the_closest_tools(
    shell: Any, model_server: MessagesServer, price_tool: Any, registry: Any, fresh_conversation: None
) -> None:
    for i in range(30):
        registry.add(make_tool(lambda account: [], name=f"ledger_entry_{i}", description=f"Ledger entries {i}."))
    model_server.add_turns(tool_turn("share_price_lookup", {"symbol": "AAPL"}), code_turn(SCRIPT), answer_with_output)
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    told = last_user(model_server.requests[1])[0]
    assert told["is_error"] and told["content"].startswith(
        "There is no tool named 'share_price_lookup'. Closest, to call in a script: get_price, "
    )
    assert len(told["content"].split(": ")[1].split(", ")) == 5  # five names, not thirty-one


def test_repeated_tool_use_blocks_run_the_script_once(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    calls = [{"type": "tool_use", "name": "execute_python", "input": {"code": SCRIPT}} for _ in range(3)]
    model_server.add_turns(Turn(calls), answer_with_output)
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    assert len(result.scripts) == 1 and len(result.tool_calls) == 2
    results = last_user(model_server.requests[1])
    sent = [b["tool_use_id"] for b in results]
    asked = [b["id"] for b in model_server.requests[1]["messages"][-2]["content"] if b["type"] == "tool_use"]
    assert sent == asked and len(sent) == 3  # every tool_use is answered, in order
    assert {b["content"].strip() for b in results} == {TOTAL}


def test_a_tool_called_by_name_runs_in_a_script(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    """A code tool the model calls as if it were an API tool still runs (through the sandbox)."""
    model_server.add_turns(tool_turn("get_price", {"ticker": "MSFT"}), text_turn("412.25 USD"))
    result, _ = ask(shell, "MSFT price?")
    assert result.status == "done" and [c.arguments for c in result.tool_calls] == [{"ticker": "MSFT"}]
    assert "412.25" in last_user(model_server.requests[1])[0]["content"]


def test_neither_answer_nor_action_gets_one_corrective_turn(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn(""), code_turn(SCRIPT), answer_with_output)
    result, _ = ask(shell)
    assert result.status == "done" and TOTAL in result.answer
    assert "neither an answer nor a script" in last_user(model_server.requests[1])
    assert model_server.requests[1]["messages"][-2]["content"] == [{"type": "text", "text": "(empty reply)"}]


def test_no_answer_after_the_correction_is_an_error_not_done(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn(""), text_turn("```bash\npip install prices\n```"))
    result, _captured = ask(shell)
    assert result.status == "error" and "neither an answer nor a script" in (result.error or "")
    assert len(model_server.requests) == 2
    assert "neither an answer nor a script" in final_view(result)["text/plain"]


def test_a_re_sent_script_ends_with_its_output_flagged(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn(SCRIPT), code_turn(SCRIPT))
    result, _captured = ask(shell)
    assert result.status == "done" and result.answer == TOTAL
    assert result.answer_source == "repeated_script" and len(result.scripts) == 1
    assert len(model_server.requests) == 2
    html = final_view(result)["text/html"]
    assert "re-sent the script instead of answering" in html
    assert "re-sent the script" in final_view(result)["text/plain"]


def test_answer_from_output_is_one_model_request(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn(SCRIPT))
    result, _captured = ask(shell, f"--answer-from-output {QUESTION}")
    assert result.status == "done" and result.answer == TOTAL
    assert result.answer_source == "answer_from_output"
    assert len(model_server.requests) == 1 and model_server.turns_left == 0
    assert "--answer-from-output" in final_view(result)["text/html"]


def test_answer_from_output_lets_the_model_fix_a_failed_script(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn("print(get_price('NOPE'))"), code_turn(SCRIPT))
    result, _ = ask(shell, f"--answer-from-output {QUESTION}")
    assert result.status == "done" and result.answer == TOTAL
    assert [s.status for s in result.scripts] == ["error", "ok"] and len(model_server.requests) == 2


def test_local_profile_shapes_the_requests(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    """auto + a base URL that is not Anthropic's → the local profile (the scripted server is on 127.0.0.1)."""
    model_server.add_turns(code_turn(SCRIPT), answer_with_output)
    ask(shell)
    first, second = model_server.requests
    assert first["tool_choice"] == {"type": "any"} and "tool_choice" not in second
    assert first["stop_sequences"] == ["<tool_call>"] and first["temperature"] == 0.0
    assert first.get("stream") is not True and "cache_control" not in json.dumps(first["system"])


def test_anthropic_profile_shapes_the_requests(
    shell: Any, model_server: MessagesServer, price_tool: Any, fresh_conversation: None
) -> None:
    shell.run_line_magic("config", 'CodeAgent.model_profile = "anthropic"')
    try:
        model_server.add_turns(code_turn(SCRIPT), answer_with_output)
        ask(shell)
    finally:
        shell.run_line_magic("config", 'CodeAgent.model_profile = "auto"')
    first = model_server.requests[0]
    assert first["stream"] is True and first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert not {"tool_choice", "stop_sequences", "temperature"} & set(first)


def test_a_wrong_profile_is_refused_at_config_time(shell: Any, caplog: pytest.LogCaptureFixture) -> None:
    shell.run_line_magic("config", 'CodeAgent.model_profile = "ollama"')
    agent = shell.magics_manager.registry["CodeAgent"]
    assert agent.model_profile == "auto"
    assert "expected any of ['auto', 'anthropic', 'local'], not the str 'ollama'" in caplog.text
