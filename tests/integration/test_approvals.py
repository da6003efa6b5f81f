"""Approvals through the real magic in a real notebook kernel whose frontend answers ``input_request``.

``send_email`` is marked ``@tool(approve=True)``; the person answers ``y`` / ``a`` / ``n`` on the kernel's
stdin channel, or cannot (``allow_stdin=False``, as under nbclient and papermill).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from codeagent.testing.messages_server import MessagesServer, code_turn, last_tool_result, text_turn, tool_turn
from codeagent.tools.approval import INTERRUPTED_NOTE, REASON_PROMPT, SCRIPT_PROMPT, TOOL_PROMPT
from tests.integration.stdin_kernel import TRACE, StdinNotebook, fresh, notebook_with_tools

SEND = """
import codeagent

for to in {addresses!r}:
    try:
        print(send_email(to, "Quarterly report"))
    except ToolDenied as e:
        assert isinstance(e, codeagent.ToolDenied)  # one class: the predefined name and the package's
        print("DENIED:", type(e).__name__, isinstance(e, PermissionError), e)
"""
TWO = ["ann@example.com", "bob@example.com"]
THREE = [*TWO, "cy@example.com"]
LOOKUP = 'print("length:", lookup("abcdef"))'


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdinNotebook]:
    yield from notebook_with_tools(tmp_path_factory)


def ask(nb: StdinNotebook, line: str, answers: list[Any], **run: Any) -> tuple[Any, dict[str, Any]]:
    out = nb.run(f"%codeagent -o r {line}", answers, **run)
    assert out.status == "ok", out.error
    return out, nb.value(TRACE)


def test_allowed_calls_run_and_the_question_shows_the_call(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(SEND.format(addresses=TWO)), text_turn("Both sent.")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "Mail the report to Ann and Bob.", ["y", "yes"])
        seen = last_tool_result(server.message_requests[1])
    assert out.prompts == [TOOL_PROMPT, TOOL_PROMPT]
    assert "send_email() — approve?" in out.shown and '"to": "ann@example.com"' in out.shown
    assert notebook.value("sent") == TWO
    assert "sent to ann@example.com" in seen and "sent to bob@example.com" in seen
    assert trace["status"] == "done"
    assert [c[1] for c in trace["calls"]] == ["allowed by you (once)"] * 2


def test_a_denied_call_raises_ToolDenied_in_the_script_and_the_model_reads_why(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(SEND.format(addresses=TWO)), text_turn("Only Ann got it.")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "Mail the report to Ann and Bob.", ["y", "n"])
        seen = last_tool_result(server.message_requests[1])
    assert notebook.value("sent") == ["ann@example.com"]
    assert "DENIED: ToolDenied True The user denied this call of send_email()" in seen
    assert [c[1] for c in trace["calls"]] == ["allowed by you (once)", "denied by you"]
    assert trace["calls"][1][2].startswith("ToolDenied: ")
    assert "✗ codeagent: send_email(to='bob@example.com'" in out.shown


def test_an_empty_answer_denies(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(SEND.format(addresses=TWO[:1])), text_turn("Not sent.")]) as server:
        fresh(notebook, server.url)
        _, trace = ask(notebook, "Mail Ann.", [""])
    assert notebook.value("sent") == []
    assert trace["calls"][0][1] == "denied by you"


def test_a_direct_tool_call_is_asked_about_too(notebook: StdinNotebook) -> None:
    turns = [tool_turn("post_message", {"channel": "#general", "text": "hi"}), text_turn("Not posted.")]
    with MessagesServer(turns) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "Say hi in #general.", ["n"])
        result_block = server.message_requests[1]["messages"][-1]["content"][0]
    assert out.prompts == [TOOL_PROMPT]
    assert notebook.value("sent") == []
    assert result_block["is_error"] is True and result_block["content"].startswith("ToolDenied: The user denied")
    assert trace["calls"] == [["post_message", "denied by you", result_block["content"]]]


def test_allow_for_the_rest_of_the_call_asks_once_then_again_next_call(notebook: StdinNotebook) -> None:
    turns = [code_turn(SEND.format(addresses=THREE)), text_turn("Sent."), code_turn(SEND.format(addresses=TWO))]
    with MessagesServer([*turns, text_turn("Not sent.")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "Mail everyone.", ["a"])
        assert out.prompts == [TOOL_PROMPT]
        assert notebook.value("sent") == THREE
        assert [c[1] for c in trace["calls"]] == [
            "allowed by you (a: for the rest of this call)",
            "allowed by you (for the rest of this call)",
            "allowed by you (for the rest of this call)",
        ]
        # "a" ends with the call: the next call asks again
        out, trace = ask(notebook, "Mail Ann and Bob again.", ["n", "n"])
    assert out.prompts == [TOOL_PROMPT, TOOL_PROMPT]
    assert notebook.value("sent") == THREE
    assert [c[1] for c in trace["calls"]] == ["denied by you", "denied by you"]


def test_confirm_shows_the_script_then_runs_it(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(LOOKUP), text_turn("It is 6.")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "--confirm How long is abcdef?", ["y"])
        seen = last_tool_result(server.message_requests[1])
    assert out.prompts == [SCRIPT_PROMPT]
    assert "the model wants to run this script" in out.shown and 'lookup("abcdef")' in out.shown
    assert notebook.value("looked_up") == ["abcdef"]
    assert seen.strip() == "length: 6"
    assert trace["scripts"] == [["ok", "run: you confirmed it"]]


def test_confirm_then_deny_sends_the_reason_to_the_model(notebook: StdinNotebook) -> None:
    reason = "Do not look anything up today, answer from memory."
    with MessagesServer([code_turn(LOOKUP), text_turn("From memory: 6.")]) as server:
        fresh(notebook, server.url)
        assert notebook.run("%config CodeAgent.confirm = True").status == "ok"
        out, trace = ask(notebook, "How long is abcdef?", ["n", reason])
        result_block = server.message_requests[1]["messages"][-1]["content"][0]
    assert out.prompts == [SCRIPT_PROMPT, REASON_PROMPT]
    assert notebook.value("looked_up") == []
    assert result_block["is_error"] is True
    assert result_block["content"] == f"The user did not let this script run. Their reason: {reason}"
    assert trace["status"] == "done"
    assert trace["scripts"] == [["denied", "not run: you declined it"]]


def test_without_stdin_the_call_is_denied_with_how_to_pre_approve(notebook: StdinNotebook) -> None:
    hint = '%config CodeAgent.approve = {"send_email": "allow"}'
    turns = [code_turn(SEND.format(addresses=TWO[:1])), text_turn("Could not send.")]
    with MessagesServer([*turns, code_turn(SEND.format(addresses=TWO[:1])), text_turn("Sent.")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "Mail Ann.", [], allow_stdin=False)
        seen = last_tool_result(server.message_requests[1])
        assert out.prompts == []
        assert notebook.value("sent") == []
        assert "no one can answer here" in seen and hint in seen
        assert f"pre-approve it: {hint}" in out.shown
        assert trace["calls"][0][1] == "denied: no one could answer (this notebook has no stdin)"
        # pre-approved, the same call runs without asking
        assert notebook.run(hint).status == "ok"
        out, trace = ask(notebook, "Mail Ann.", [], allow_stdin=False)
    assert notebook.value("sent") == TWO[:1]
    assert trace["calls"][0][1] == "allowed by c.CodeAgent.approve"


def test_interrupt_while_asked_denies_and_stops_the_call(notebook: StdinNotebook) -> None:
    def press_ctrl_c(nb: StdinNotebook) -> None:
        nb.interrupt()

    with MessagesServer([code_turn(SEND.format(addresses=TWO)), text_turn("never sent")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "Mail Ann and Bob.", [press_ctrl_c])
        requests = len(server.message_requests)
    assert out.prompts == [TOOL_PROMPT]
    assert requests == 1  # the call stopped: the model was not asked again
    assert notebook.value("sent") == []
    assert trace["status"] == "interrupted"
    assert trace["calls"] == [["send_email", INTERRUPTED_NOTE, f"ToolDenied: {INTERRUPTED_NOTE}"]]
    assert notebook.value("kept") == {"answer": 41}
    with MessagesServer([code_turn(LOOKUP), text_turn("6")]) as server:  # the next call works
        fresh(notebook, server.url)
        _, trace = ask(notebook, "How long is abcdef?", [])
    assert trace["status"] == "done" and notebook.value("looked_up") == ["abcdef"]


def test_interrupt_while_asked_to_confirm_a_script_stops_the_call(notebook: StdinNotebook) -> None:
    with MessagesServer([code_turn(LOOKUP), text_turn("never asked")]) as server:
        fresh(notebook, server.url)
        out, trace = ask(notebook, "--confirm How long is abcdef?", [lambda nb: nb.interrupt()])
        requests = len(server.message_requests)
    assert out.prompts == [SCRIPT_PROMPT]
    assert requests == 1
    assert notebook.value("looked_up") == []
    assert trace["status"] == "interrupted"
    assert trace["scripts"] == [["interrupted", INTERRUPTED_NOTE]]


def test_waiting_for_an_answer_does_not_count_against_the_scripts_wall_clock(notebook: StdinNotebook) -> None:
    def answer_slowly(nb: StdinNotebook) -> str:
        time.sleep(2.5)
        return "y"

    with MessagesServer([code_turn(SEND.format(addresses=TWO[:1])), text_turn("Sent.")]) as server:
        fresh(notebook, server.url)
        _, trace = ask(notebook, "--timeout 1.5 Mail Ann.", [answer_slowly])
        seen = last_tool_result(server.message_requests[1])
    assert trace["scripts"][0][0] == "ok", seen
    assert seen.strip() == "sent to ann@example.com"
    assert notebook.value("sent") == TWO[:1]
