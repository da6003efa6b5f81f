"""What a newcomer trips over: option mistakes, `{name}` in options, `?` questions, one output per call,
the terminal view."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import Any

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

from codeagent.testing.messages_server import MessagesServer, code_turn, last_tool_result, text_turn
from codeagent.tools import tool


@pytest.fixture
def lookup_tool(registry: Any) -> Any:
    @tool
    def lookup(key: str) -> dict:
        """Look a key up."""
        return {"key": key, "value": len(key)}

    return lookup


# -- mistakes are visible ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "closest"),
    [("--modle foo Which items are there", "--model"), ("--no-such-option hi", None), ("-x hi", None)],
)
def test_an_unknown_leading_option_is_a_short_usage_error(
    shell: Any, model_server: MessagesServer, line: str, closest: str | None
) -> None:
    with pytest.raises(UsageError) as error:
        shell.run_line_magic("codeagent", line)
    message = str(error.value)
    assert f"unknown option {line.split()[0]}" in message and "\n" not in message
    if closest:
        assert f"Did you mean {closest}?" in message
    assert model_server.requests == []  # nothing went to the model


def test_double_dash_ends_the_options_and_dashed_numbers_are_questions(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn("a"), text_turn("b"))
    shell.run_line_magic("codeagent", "--max-steps 2 -- --verbose is a flag?")
    shell.run_line_magic("codeagent", "-5% change since May?")
    sent = [r["messages"][-1]["content"] for r in model_server.requests]
    assert sent == ["--verbose is a flag?", "-5% change since May?"]


def test_names_in_option_values_are_expanded(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # only the expanded option can reach the server
    shell.user_ns["srv"] = model_server
    shell.user_ns["chosen_model"] = "claude-from-a-variable"
    try:
        model_server.add_turns(text_turn("hello back"))
        result = shell.run_line_magic("codeagent", "--base-url {srv.url} --model {chosen_model} hello")
        assert result.status == "done", result.error
        assert model_server.requests[0]["model"] == "claude-from-a-variable"
        with pytest.raises(UsageError, match=r"--base-url: \{nowhere\.url\} names no notebook variable"):
            shell.run_line_magic("codeagent", "--base-url {nowhere.url} hello")
    finally:
        shell.user_ns.pop("srv")
        shell.user_ns.pop("chosen_model")


def test_a_connection_error_names_the_url_that_was_tried(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    shell.run_line_magic("config", "CodeAgent.api_retries = 0")
    try:
        result = shell.run_line_magic("codeagent", "--base-url http://127.0.0.1:9 hello")
    finally:
        shell.run_line_magic("config", "CodeAgent.api_retries = 2")
    assert result.status == "error"
    assert "Could not connect to the API at http://127.0.0.1:9/v1/messages" in (result.error or "")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%codeagent who went over budget?", "get_ipython().run_line_magic('codeagent', 'who went over budget?')"),
        (
            "r = %codeagent who went over budget?",
            "r = get_ipython().run_line_magic('codeagent', 'who went over budget?')",
        ),
        ("a, b = %codeagent two things?", "a, b = get_ipython().run_line_magic('codeagent', 'two things?')"),
        ("r = %codeagent no question mark", "r = get_ipython().run_line_magic('codeagent', 'no question mark')"),
        ("%codeagent?", "get_ipython().run_line_magic('pinfo', '%codeagent')"),
    ],
)
def test_question_marks_reach_the_magic_in_every_form(shell: Any, cell: str, expected: str) -> None:
    assert shell.transform_cell(cell + "\n") == expected + "\n"


def test_help_shows_the_defaults_in_force(shell: Any) -> None:
    shell.run_line_magic("config", "CodeAgent.model = 'claude-configured-here'")
    try:
        doc = shell.find_line_magic("codeagent").__doc__
    finally:
        shell.run_line_magic("config", "CodeAgent.model = 'claude-sonnet-5-5'")
    assert "default: claude-configured-here" in " ".join(doc.split())
    steps = shell.magics_manager.registry["CodeAgent"].max_steps  # whatever an earlier test left configured
    assert "CodeAgent.model" not in doc and f"default: {steps}" in " ".join(doc.split())


# -- the terminal view -----------------------------------------------------------------------------------


def test_the_terminal_view_redraws_a_status_line_then_shows_the_sections_as_text(
    shell: Any, model_server: MessagesServer, lookup_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn("print(lookup('apple'))"), text_turn("apple has 5 letters"))
    with capture_output() as captured:
        shell.run_cell("%codeagent --show code,calls,output How long is apple?", store_history=False)
    stdout = captured.stdout
    assert "\rcodeagent · asking the model · step 1 of 10" in stdout
    assert "\rcodeagent · running the script" in stdout
    shown = stdout.rsplit("\r", 1)[-1]  # what is left on screen after the status line was erased
    assert "apple has 5 letters" in shown
    assert "print(lookup('apple'))" in shown  # code
    assert re.search(r"1\s+lookup\(key='apple'\)\s+\{\"key\": \"apple\", \"value\": 5\}", shown)  # calls
    assert "output the model saw" in shown and "{'key': 'apple', 'value': 5}" in shown  # output
    assert "CodeAgentResult(" not in stdout


# -- one output per call, in a real notebook kernel ------------------------------------------------------


def run_cells(cells: list[str], path: Any) -> Any:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path)}}).execute()
    return nb


def test_in_a_notebook_the_answer_is_the_cells_result_and_assignment_forms_work(
    model_server: MessagesServer, tmp_path: Any
) -> None:
    model_server.add_turns(
        text_turn("Author A has the best-rated books."),
        text_turn("Bob went over budget."),
        text_turn("Third answer."),
        text_turn("Fourth answer."),
    )
    nb = run_cells(
        [
            # the same cell loads the extension and asks a question ending in "?", in both forms
            "%load_ext codeagent\n%codeagent Which author has the best-rated books?",
            "%load_ext codeagent\nr = %codeagent who went over budget?",
            "print(r.answer, _.status)",
            "%codeagent -o kept Third question",
            "x = %codeagent Fourth question\nprint('after the call')",
            "print(kept.answer, '|', x.answer)",
        ],
        tmp_path,
    )
    sent = [req["messages"][-1]["content"] for req in model_server.requests]
    assert sent == [
        "Which author has the best-rated books?",
        "who went over budget?",
        "Third question",
        "Fourth question",
    ]

    def outputs(i: int, kind: str) -> list[Any]:
        return [o for o in nb.cells[i].outputs if o.output_type == kind]

    for i, answer in ((0, "Author A has the best-rated books."), (3, "Third answer.")):
        results = outputs(i, "execute_result")
        assert len(results) == 1 and answer in results[0].data["text/html"]
        # the live view shrank to nothing: no second rendering of the answer, no CodeAgentResult(...) line
        others = [o for o in nb.cells[i].outputs if o.output_type != "execute_result"]
        assert all(o.get("data", {}).get("text/plain", "") == "" for o in others), others
    assert "Object `" not in str(nb.cells[0].outputs) + str(nb.cells[1].outputs)
    # assigned: no execute_result, the final view is displayed after the cell
    assert outputs(1, "execute_result") == []
    assert any("Bob went over budget." in o.data.get("text/html", "") for o in outputs(1, "display_data"))
    assert "".join(o.get("text", "") for o in nb.cells[2].outputs).strip() == "Bob went over budget. done"
    assert "Fourth answer." in str(outputs(4, "display_data"))
    assert "".join(o.get("text", "") for o in nb.cells[5].outputs).strip() == "Third answer. | Fourth answer."
    assert "CodeAgentResult(" not in str([c.outputs for c in nb.cells])


def test_the_model_reads_the_scripts_traceback_not_the_stub_machinery(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    @tool
    def price(fruit: str) -> float:
        """Price of a fruit."""
        return {"apple": 1.0}[fruit]

    model_server.add_turns(
        code_turn("def total(fruits):\n    return sum(price(f) for f in fruits)\n\nprint(total(['apple', 'banana']))"),
        text_turn("banana has no price"),
    )
    result = shell.run_line_magic("codeagent", "What do apple and banana cost?")
    seen = last_tool_result(model_server.requests[1])
    assert "KeyError: 'banana'" in seen
    assert "total(['apple', 'banana'])" in seen and "return sum(price(f) for f in fruits)" in seen  # script frames
    assert "runtime.py" not in seen and "codeagent" not in seen and "skipping hidden" not in seen
    assert len(seen) < 700, seen
    assert result.scripts[0].error_name == "KeyError"


# -- trying it without a key ------------------------------------------------------------------------------


def test_the_bundled_server_serves_when_run_by_hand(
    shell: Any, registry: Any, fresh_conversation: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    @tool
    def list_books() -> list[dict]:
        """Every book in the shop."""
        return []

    monkeypatch.setenv("ANTHROPIC_API_KEY", "any-value-for-a-local-server")
    server = subprocess.Popen(
        [sys.executable, "-m", "codeagent.testing.messages_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", server.stdout.readline())
        assert url, "the server did not say where it listens"
        result = shell.run_line_magic("codeagent", f"--base-url {url.group(1)} What tools do I have?")
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0
    assert result.status == "done", result.error
    assert "list_books() -> list[dict]: Every book in the shop." in result.answer and "1 tool(s)" in result.answer
