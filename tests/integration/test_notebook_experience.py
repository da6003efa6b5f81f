"""The notebook experience: live view, final view, rich output, interrupts, follow-ups, `?`, API errors."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any, ClassVar

import comm
import pytest
from comm.base_comm import BaseComm
from IPython.utils.capture import capture_output

from codeagent.agent.trace import CodeAgentResult
from codeagent.kernel_ext.magic import final_view
from codeagent.testing.messages_server import DelayTurn, ErrorTurn, MessagesServer, Turn, code_turn, text_turn
from codeagent.tools import tool
from tests.conftest import user_variables


class RecordingComm(BaseComm):
    """A comm that keeps every message a widget sends (there is no frontend in these tests)."""

    sent: ClassVar[list[dict[str, Any]]] = []

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        RecordingComm.sent.append({"type": msg_type, "data": data, "at": time.perf_counter()})


@pytest.fixture
def widget_messages(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    RecordingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: RecordingComm(*a, **k))
    return RecordingComm.sent


def widget_text(messages: list[dict[str, Any]]) -> str:
    return " ".join(str((m["data"] or {}).get("state", {}).get("value", "")) for m in messages)


class TagBalance(HTMLParser):
    VOID: ClassVar[set[str]] = {"br", "hr", "img", "meta", "col"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.details: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
        if tag == "details":
            self.details.append(dict(attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> after {self.stack[-3:]}"
        self.stack.pop()


@pytest.fixture
def counter_tool(registry: Any) -> Any:
    @tool
    def lookup(key: str) -> dict:
        """Look a key up."""
        return {"key": key, "value": len(key)}

    return lookup


@pytest.fixture
def widget_view(shell: Any) -> Iterator[None]:
    """The ipywidgets live view even in this kernel-less shell (a terminal would get the text view)."""
    shell.run_line_magic("config", "CodeAgent.view = 'widget'")
    yield
    shell.run_line_magic("config", "CodeAgent.view = 'auto'")


def test_live_view_updates_during_the_call_then_shrinks_and_the_result_is_the_final_view(
    shell: Any,
    model_server: MessagesServer,
    counter_tool: Any,
    fresh_conversation: None,
    widget_messages: list[dict[str, Any]],
    widget_view: None,
) -> None:
    during: dict[str, str] = {}

    def answer(body: dict[str, Any]) -> Turn:
        during["text"] = widget_text(widget_messages)  # what the live view had shown before the call ended
        return text_turn("**Done**: 12 lookups.")

    model_server.add_turns(
        code_turn("for i in range(12):\n    lookup(str(i))\nprint('ok')", text="Looking things up now."), answer
    )
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", "Look up 12 keys")

    assert result.status == "done"
    assert "tool calls: <b>12</b>" in during["text"]
    assert "Looking things up now." in during["text"]
    assert "step 2 of 10" in during["text"] or "step 1 of 10" in during["text"]
    first, last = captured.outputs[0], captured.outputs[-1]
    display_id = first.transient["display_id"]
    assert "application/vnd.jupyter.widget-view+json" in first.data and first.data["text/plain"] == ""
    assert last.update and last.transient["display_id"] == display_id and last.data == {"text/plain": ""}
    assert len(captured.outputs) == 2  # the live view and its shrinking: the answer is the result's own display
    html = final_view(result)["text/html"]
    checker = TagBalance()
    checker.feed(html)
    assert checker.stack == []
    assert checker.details and all("open" not in d for d in checker.details)
    assert "<strong>Done</strong>: 12 lookups." in html
    assert "<script" not in html and "<style" not in html
    assert "Done" in final_view(result)["text/plain"]
    assert any(m["type"] == "comm_close" for m in widget_messages)  # the live widgets were closed


def test_live_view_redraws_are_coalesced(
    shell: Any,
    model_server: MessagesServer,
    counter_tool: Any,
    fresh_conversation: None,
    widget_messages: list[dict[str, Any]],
    widget_view: None,
) -> None:
    model_server.add_turns(code_turn("for i in range(3000):\n    lookup(str(i))\nprint('ok')"), text_turn("done"))
    started = time.perf_counter()
    with capture_output():
        result = shell.run_line_magic("codeagent", "Look up 3000 keys")
    elapsed = time.perf_counter() - started
    assert result.status == "done" and len(result.tool_calls) == 3000
    updates = [m for m in widget_messages if m["type"] == "comm_msg"]
    # at most 10 redraws a second plus one per request and script started: not one per call
    assert len(updates) <= 10 * elapsed + 3, (len(updates), elapsed)
    assert "tool calls: <b>3000</b>" in widget_text(widget_messages)  # the last count was drawn


def test_a_fast_calls_live_view_is_one_widget_and_a_few_updates(
    shell: Any,
    model_server: MessagesServer,
    counter_tool: Any,
    fresh_conversation: None,
    widget_messages: list[dict[str, Any]],
    widget_view: None,
) -> None:
    model_server.add_turns(code_turn("print(lookup('a'))"), text_turn("done"))
    started = time.perf_counter()
    with capture_output():
        result = shell.run_line_magic("codeagent", "Look up a")
    elapsed = time.perf_counter() - started
    assert result.status == "done" and len(result.scripts[0].tool_calls) == 1
    kinds = [m["type"] for m in widget_messages]
    opened = [m["data"]["state"]["_model_name"] for m in widget_messages if m["type"] == "comm_open"]
    assert sorted(opened) == ["HTMLModel", "HTMLStyleModel", "LayoutModel"], opened  # one widget
    assert kinds.count("comm_close") == 1, kinds
    assert "codeagent · starting" in widget_text(widget_messages[:3])  # the first state came with comm_open
    # redrawn when each request and the script start (3), and at most 10 times a second besides
    assert kinds.count("comm_msg") <= 3 + 10 * elapsed, (kinds, elapsed)


def test_show_opens_chosen_sections(
    shell: Any, model_server: MessagesServer, counter_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn("print(lookup('a'))"), text_turn("fine"))
    result = shell.run_line_magic("codeagent", "--show code,calls look up a")
    html = final_view(result)["text/html"]
    opened = re.findall(r"<details open[^>]*><summary[^>]*>([^<]*)", html)
    assert any(t.startswith("✓ Script 1") for t in opened) and any(t.startswith("Tool calls") for t in opened)
    assert not any(t.startswith("Usage") for t in opened)


def test_matplotlib_figure_appears_as_png_and_model_sees_a_placeholder(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    script = (
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('<script>x</script>')\nplt.show()\n"
        "from IPython.display import HTML, display\n"
        "display(HTML('<table><tr><td onclick=\"evil()\">1</td></tr></table><script>alert(1)</script>'))"
    )
    model_server.add_turns(code_turn(script), text_turn("plotted"))
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", "plot something")
    pngs = [o for o in captured.outputs if "image/png" in o.data]
    assert len(pngs) == 1 and len(pngs[0].data["image/png"]) > 1000
    htmls = [o.data["text/html"] for o in captured.outputs if "<table>" in o.data.get("text/html", "")]
    assert htmls == ["<table><tbody><tr><td>1</td></tr></tbody></table>"]  # nh3 parses as HTML5 does
    seen = model_server.requests[1]["messages"][-1]["content"][0]["content"]
    assert re.search(r"\[figure 1: \d+×\d+ PNG\]", seen) and "[display 2: HTML table]" in seen
    assert "iVBOR" not in seen  # no image bytes in the model's context
    assert result.scripts[0].displays


def _interrupt_soon(delay: float) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_interrupt_stops_a_long_script_and_the_next_call_works(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn("import time\nwhile True:\n    time.sleep(0.01)"))
    timer = _interrupt_soon(1.5)
    started = time.perf_counter()
    with capture_output():
        result = shell.run_line_magic("codeagent", "spin")
    timer.join()
    assert result.status == "interrupted"
    assert time.perf_counter() - started < 1.5 + 3.0
    assert result.scripts[0].status == "interrupted"
    assert "interrupted" in final_view(result)["text/plain"]
    model_server.add_turns(code_turn("print(6 * 7)"), text_turn("42"))
    with capture_output():
        again = shell.run_line_magic("codeagent", "--new what is 6*7")
    assert again.status == "done" and again.scripts[0].output.strip() == "42"


def test_interrupt_stops_the_model_stream(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    slow = Turn([{"type": "text", "text": "word " * 40}], chunk_delay=0.5)
    model_server.add_turns(slow)
    shell.run_line_magic("config", 'CodeAgent.model_profile = "anthropic"')  # streams (the local profile does not)
    timer = _interrupt_soon(1.0)
    started = time.perf_counter()
    try:
        with capture_output():
            result = shell.run_line_magic("codeagent", "talk slowly")
        timer.join()
    finally:
        shell.run_line_magic("config", 'CodeAgent.model_profile = "auto"')
    assert result.status == "interrupted"
    assert time.perf_counter() - started < 1.0 + 1.5


def test_follow_up_carries_context_and_sandbox_keeps_variables(
    shell: Any, model_server: MessagesServer, counter_tool: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn("rows = [lookup(k) for k in 'abc']\nprint(len(rows))"), text_turn("three rows"))
    with capture_output():
        shell.run_line_magic("codeagent", "fetch rows")
    model_server.add_turns(code_turn("print(sum(r['value'] for r in rows))"), text_turn("total 3"))
    with capture_output():
        second = shell.run_line_magic("codeagent", "and their total?")
    assert second.scripts[0].output.strip() == "3"  # `rows` survived in the sandbox
    followup = model_server.requests[2]["messages"]
    text = str(followup)
    assert followup[0]["content"] == "fetch rows" and "three rows" in text and "lookup(k)" in text
    assert "'value': 1" not in text and '"value": 1' not in text  # no intermediate data carried over
    model_server.add_turns(text_turn("fresh"))
    with capture_output():
        shell.run_line_magic("codeagent", "--new hello")
    assert model_server.requests[-1]["messages"] == [{"role": "user", "content": "hello"}]


def test_reset_restarts_the_sandbox(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(code_turn("kept = 1"), text_turn("set"))
    with capture_output():
        shell.run_line_magic("codeagent", "set kept")
    with capture_output() as out:
        shell.run_line_magic("codeagent", "--reset")
    assert "fresh sandbox" in out.stdout
    model_server.add_turns(code_turn("print('kept' in globals())"), text_turn("checked"))
    with capture_output():
        result = shell.run_line_magic("codeagent", "is it kept?")
    assert result.scripts[0].output.strip() == "False"


def test_question_mark_line_reaches_the_magic(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn("nobody"))
    with capture_output() as out:
        shell.run_cell("%codeagent who went over budget?", store_history=False)
    assert model_server.requests and model_server.requests[0]["messages"][-1]["content"] == "who went over budget?"
    assert "Object `budget` not found" not in out.stdout
    model_server.add_turns(text_turn("still nobody"))
    with capture_output():
        shell.run_cell("x_question = 1\n%codeagent and in 2026-11?", store_history=False)
    shell.user_ns.pop("x_question", None)
    assert model_server.requests[-1]["messages"][-1]["content"] == "and in 2026-11?"


def test_prompt_expansion(shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None) -> None:
    shell.user_ns["team_name"] = "platform"
    try:
        model_server.add_turns(text_turn("ok"))
        with capture_output():
            shell.run_cell(
                "%codeagent team {team_name}, code {{x}} and {undefined} and f(){ return 1 }", store_history=False
            )
    finally:
        shell.user_ns.pop("team_name")
    sent = model_server.requests[0]["messages"][-1]["content"]
    assert sent == "team 'platform', code {x} and {undefined} and f(){ return 1 }"


API_ERRORS = [
    (ErrorTurn(401, "authentication_error", "invalid x-api-key"), "The API key was refused (401)"),
    (ErrorTurn(403, "permission_error", "not allowed"), "may not use that model or feature (403)"),
    (ErrorTurn(404, "not_found_error", "model: nope"), "Model or endpoint not found (404)"),
    (ErrorTurn(429, "rate_limit_error", "slow down", {"retry-after-ms": "0"}), "Rate limited (429)"),
    (ErrorTurn(500, "api_error", "boom", {"retry-after-ms": "0"}), "The API failed (500)"),
    (ErrorTurn(529, "overloaded_error", "busy", {"retry-after-ms": "0"}), "overloaded (529)"),
]


@pytest.mark.parametrize(("turn", "message"), API_ERRORS, ids=[str(t.status) for t, _ in API_ERRORS])
def test_api_errors_become_one_actionable_line(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, turn: ErrorTurn, message: str
) -> None:
    retries = turn.status in (429, 500, 529)
    model_server.add_turns(*([turn] * (2 if retries else 1)))
    shell.run_line_magic("config", "CodeAgent.api_retries = 1")
    try:
        with capture_output() as captured:
            result = shell.run_line_magic("codeagent", "hello")
    finally:
        shell.run_line_magic("config", "CodeAgent.api_retries = 2")
    assert result.status == "error" and message in (result.error or "")
    assert "\n" not in result.error
    assert len(model_server.requests) == (2 if retries else 1)  # the SDK's own retry happened first
    assert message in final_view(result)["text/plain"]
    assert "test-key-not-secret" not in str(final_view(result)) + captured.stdout


def test_connection_refused_and_timeout(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    shell.run_line_magic("config", "CodeAgent.api_retries = 0")
    try:
        with capture_output():
            refused = shell.run_line_magic("codeagent", "--base-url http://127.0.0.1:9 hello")
        shell.run_line_magic("config", "CodeAgent.api_timeout = 0.5")
        model_server.add_turns(DelayTurn(3.0, text_turn("late")))
        with capture_output():
            slow = shell.run_line_magic("codeagent", "hello")
    finally:
        shell.run_line_magic("config", "CodeAgent.api_retries = 2")
        shell.run_line_magic("config", "CodeAgent.api_timeout = 600.0")
    assert refused.status == "error" and "Could not connect to the API" in (refused.error or "")
    assert slow.status == "error" and "did not answer in time" in (slow.error or "")


def test_usage_and_sandbox_info_reports(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn("hi"))
    with capture_output():
        result: CodeAgentResult = shell.run_line_magic("codeagent", "hello")
    assert "estimated cost" in final_view(result)["text/html"]
    with capture_output() as out:
        shell.run_line_magic("codeagent", "--usage")
    session = shell.magics_manager.registry["CodeAgent"].session
    assert f"{session.calls} call(s)" in out.stdout
    assert f"input tokens {session.usage.input_tokens:,}" in out.stdout
    assert session.usage.input_tokens >= result.usage.input_tokens > 0
    with capture_output() as info:
        shell.run_line_magic("codeagent", "--sandbox-info")
    assert "codeagent sandbox (mode auto)" in info.stdout and "limits: memory 2048 MiB" in info.stdout


def test_variables_survive(shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None) -> None:
    shell.user_ns["precious"] = {"a": 1}
    before = user_variables(shell)
    model_server.add_turns(code_turn("import os\nos._exit(3)"), text_turn("it died"))
    with capture_output():
        result = shell.run_line_magic("codeagent", "crash the sandbox")
    try:
        assert result.scripts[0].status == "crashed" and "SandboxCrashed" in result.scripts[0].output
        assert user_variables(shell) == before
    finally:
        shell.user_ns.pop("precious")


def test_unsandboxed_mode_warns_on_every_run(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    shell.run_line_magic("config", "CodeAgent.sandbox_mode = 'unsandboxed'")
    try:
        for _ in range(2):
            model_server.add_turns(code_turn("print(1)"), text_turn("one"))
            with capture_output() as captured:
                result = shell.run_line_magic("codeagent", "print one")
            assert result.sandbox_layers == ["rlimits"]  # the resource limits it can still apply
            assert "WARNING: unsandboxed" in captured.stderr
            assert "unsandboxed: generated code runs with no lockdown layer" in final_view(result)["text/html"]
    finally:
        shell.run_line_magic("config", "CodeAgent.sandbox_mode = 'auto'")
    model_server.add_turns(code_turn("print(2)"), text_turn("two"))
    with capture_output() as captured:
        locked = shell.run_line_magic("codeagent", "print two")
    assert "namespaces" in locked.sandbox_layers and "WARNING" not in captured.stderr
