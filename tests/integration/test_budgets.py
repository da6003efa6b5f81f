"""Hard budgets through the real magic in a real notebook kernel: each stops the call exactly at its limit,
leaves the notebook's state as it was, and the next call works.

The scripted model reports fixed usage per request, so the spending is known: with the default model's
(sonnet) list prices, 10,000 input + 1,000 output tokens cost $0.045.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, text_turn
from tests.integration.stdin_kernel import TRACE, StdinNotebook, fresh, notebook_with_tools

FIVE_LOOKUPS = """
for key in ["a", "bb", "ccc", "dddd", "eeeee"]:
    print(key, lookup(key))
"""
CATCHES = """
try:
    for key in ["a", "bb", "ccc"]:
        print(key, lookup(key))
except __import__("codeagent").BudgetExceeded as e:
    print("BUDGET:", type(e).__name__, isinstance(e, RuntimeError), e)
"""
USAGE = {"input_tokens": 10_000, "output_tokens": 1_000}  # $0.045 a request at sonnet prices


def costly(turn: Turn, usage: dict[str, int] = USAGE) -> Turn:
    turn.usage = dict(usage)
    return turn


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdinNotebook]:
    yield from notebook_with_tools(tmp_path_factory)


def ask(nb: StdinNotebook, line: str) -> dict[str, Any]:
    out = nb.run(f"%codeagent -o r {line}", allow_stdin=False)
    assert out.status == "ok", out.error
    return nb.value(TRACE)


def next_call_works(nb: StdinNotebook) -> None:
    assert nb.value("kept") == {"answer": 41}
    with MessagesServer([code_turn('print(lookup("xyz"))'), text_turn("3")]) as server:
        fresh(nb, server.url)
        trace = ask(nb, "How long is xyz?")
    assert trace["status"] == "done", trace
    assert nb.value("looked_up") == ["xyz"]


def test_max_tool_calls_raises_BudgetExceeded_in_the_script_past_the_limit(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(FIVE_LOOKUPS), text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        trace = ask(notebook, "--max-tool-calls 3 How long are these keys?")
        requests = len(server.message_requests)
    assert notebook.value("looked_up") == ["a", "bb", "ccc"]  # exactly the limit ran
    assert requests == 1  # the call stopped: the script's output did not go back for another request
    assert trace["status"] == "budget" and trace["stopped_by"] == "--max-tool-calls 3"
    assert trace["calls"][3][2].startswith("BudgetExceeded: lookup() was not called")
    assert "Stopped by --max-tool-calls 3" in trace["error"] and "3 tool call(s)." in trace["error"]
    next_call_works(notebook)


def test_the_script_can_catch_BudgetExceeded_and_the_model_is_told_the_limit(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(CATCHES), text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        trace = ask(notebook, "--max-tool-calls 2 How long are these keys?")
        system = server.message_requests[0]["system"][0]["text"]
    assert "at most 2 tool call(s) in all" in system
    assert trace["status"] == "budget"
    assert notebook.value("looked_up") == ["a", "bb"]
    assert notebook.value("r.scripts[0].output").splitlines()[-1].startswith("BUDGET: BudgetExceeded True")


def test_max_input_tokens_does_not_send_the_request_that_would_pass_it(notebook: StdinNotebook) -> None:
    usage = {"input_tokens": 4_000, "output_tokens": 10}
    turns = [costly(code_turn(f'print(lookup("{k}"))'), usage) for k in ("a", "bb", "ccc")]
    with MessagesServer([*turns, text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        trace = ask(notebook, "--max-input-tokens 10000 How long are a, bb and ccc?")
        requests = len(server.message_requests)
    # 4,000 + 4,000 were read; a third request (≈4,000 more) would pass 10,000
    assert requests == 2
    assert notebook.value("looked_up") == ["a", "bb"]
    assert trace["status"] == "budget" and trace["stopped_by"] == "--max-input-tokens 10,000"
    assert "8,000 input tokens" in trace["error"]
    next_call_works(notebook)


def test_max_cost_counts_cache_reads_and_writes_and_caps_the_output(notebook: StdinNotebook) -> None:
    # $0.006 uncached + $0.015 cache read + $0.015 cache write + $0.015 output = $0.051 a request
    usage = {"input_tokens": 2_000, "cache_read_input_tokens": 50_000, "cache_creation_input_tokens": 4_000}
    usage["output_tokens"] = 1_000
    turns = [costly(code_turn(f'print(lookup("{k}"))'), usage) for k in ("a", "bb", "ccc")]
    with MessagesServer([*turns, text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        trace = ask(notebook, "--max-cost 0.14 How long are a, bb and ccc?")
        sent = server.message_requests
    assert len(sent) == 2  # $0.102 spent; a third request would need ≈$0.036 input + output, $0.038 is left
    assert trace["status"] == "budget" and trace["stopped_by"] == "--max-cost $0.14"
    assert "≈ $0.1020" in trace["error"] and "cache read 100,000" in trace["error"]
    # each request's max_tokens leaves its output no room to pass the limit
    assert sent[0]["max_tokens"] == 8192
    second = sent[1]["max_tokens"]
    assert second < 8192 and 0.051 + 0.036 + second * 15e-6 <= 0.14 + 0.001
    assert notebook.value("looked_up") == ["a", "bb"]
    next_call_works(notebook)


def test_session_budget_stops_a_later_call_before_its_first_request(notebook: StdinNotebook) -> None:
    with MessagesServer([costly(code_turn('print(lookup("a"))')), costly(text_turn("1"))]) as server:
        fresh(notebook, server.url)
        spent_before = notebook.value("get_ipython().find_magic('codeagent').__self__.session.spent_usd")
        # room for this call ($0.09); the $0.002 left cannot pay even the least output of another request
        budget = spent_before + 0.092
        assert notebook.run(f"%config CodeAgent.session_budget_usd = {budget}").status == "ok"
        assert ask(notebook, "How long is a?")["status"] == "done"
    with MessagesServer([text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        assert notebook.run(f"%config CodeAgent.session_budget_usd = {budget}").status == "ok"
        trace = ask(notebook, "And b?")
        requests = len(server.message_requests)
    assert requests == 0
    assert trace["status"] == "budget"
    assert trace["stopped_by"].startswith(f"c.CodeAgent.session_budget_usd = {budget:g}")
    assert notebook.run("%config CodeAgent.session_budget_usd = None").status == "ok"
    next_call_works(notebook)


@pytest.mark.parametrize("option", ["--max-cost 0.5", ""])
def test_a_model_without_a_known_price_refuses_a_dollar_limit(notebook: StdinNotebook, option: str) -> None:
    with MessagesServer([text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        if not option:
            assert notebook.run("%config CodeAgent.session_budget_usd = 1.0").status == "ok"
        out = notebook.run(f"%codeagent --model local-qwen-coder {option} How long is a?", allow_stdin=False)
        requests = len(server.message_requests)
    assert requests == 0
    assert "does not know the price of 'local-qwen-coder'" in out.shown
    assert "--max-input-tokens" in out.shown
    assert notebook.run("%config CodeAgent.session_budget_usd = None").status == "ok"


def test_limits_are_checked_when_configured(notebook: StdinNotebook) -> None:
    out = notebook.run("%config CodeAgent.max_cost = -1")
    assert "must be >= 0 or None" in out.shown
    out = notebook.run('%config CodeAgent.approve = {"send_email": "sure"}')
    assert "allow / deny / ask" in out.shown
    with MessagesServer([code_turn(FIVE_LOOKUPS), text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        assert notebook.run("%config CodeAgent.max_tool_calls = 1").status == "ok"
        trace = ask(notebook, "How long are these keys?")
        assert notebook.run("%config CodeAgent.max_tool_calls = None").status == "ok"
        requests = len(server.message_requests)
    assert requests == 1
    assert trace["stopped_by"] == "--max-tool-calls 1"
    assert notebook.value("looked_up") == ["a"]
