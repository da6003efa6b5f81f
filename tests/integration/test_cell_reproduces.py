"""``%codeagent --cell`` in a real notebook kernel: the cell from the execute reply's ``set_next_input`` payload,
run in the same kernel, prints what the sandbox printed, without a model call. Plus ``@name`` ≡ ``--data name``,
e-mail addresses and ``@@``, and the notebook context the model receives (names and shapes, never a row)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.utils.capture import capture_output
from jupyter_client.manager import KernelManager

from codeagent.examples.expenses import over_budget_script
from codeagent.examples.runner import TEARDOWN, kernel_env
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, last_tool_result, text_turn
from tests.integration.test_expense_nbclient import CELLS as EXPENSE_CELLS

ORDERS = """\
import numpy as np, pandas as pd
orders = pd.DataFrame({
    "order_ref": [f"ORDREF-{i:05d}-X" for i in range(400)],
    "region": ["north", "south", "east", "west"] * 100,
    "amount": np.round(np.linspace(1.25, 999.75, 400), 2),
})
before = orders.copy()
"""
ANALYSIS_1 = """\
# the totals per region, kept for the next script
by_region = orders.groupby("region")["amount"].agg(["sum", "count"]).round(2)
print(by_region.to_string())
by_region.shape
"""
ANALYSIS_2 = """\
top = by_region.sort_values("sum", ascending=False).head(2)
set_result(top)
for region, row in top.iterrows():
    print(f"{region}: {row['sum']:.2f} over {int(row['count'])} orders")
{"regions": len(by_region), "top": list(top.index)}
"""


class Kernel:
    """A real notebook kernel (jupyter_client); ``run`` returns the execute reply and the outputs as text."""

    def __init__(self, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 180) -> tuple[dict[str, Any], str]:
        chunks: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                chunks.append(content["text"])
            elif kind in ("execute_result", "display_data") and "text/plain" in content["data"]:
                chunks.append(content["data"]["text/plain"] + "\n")
            elif kind == "error":
                chunks.append("\n".join(content["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return reply["content"], "".join(chunks)

    def ok(self, code: str) -> tuple[dict[str, Any], str]:
        content, text = self.run(code)
        assert content["status"] == "ok", text
        return content, text

    def close(self) -> None:
        try:
            self.run(TEARDOWN, timeout=60)
        finally:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(model_server: MessagesServer, tmp_path: Any) -> Iterator[Kernel]:
    env = kernel_env(
        {
            "ANTHROPIC_BASE_URL": model_server.url,
            "ANTHROPIC_API_KEY": "test-key-not-secret",
            "IPYTHONDIR": str(tmp_path / "ipython"),
        }
    )
    k = Kernel(env)
    try:
        yield k
    finally:
        k.close()


def inserted_cell(reply: dict[str, Any]) -> str:
    cells = [p for p in reply.get("payload", []) if p.get("source") == "set_next_input"]
    assert len(cells) == 1, reply.get("payload")
    assert cells[0]["replace"] is False  # a new cell below, not the magic's own cell replaced
    return str(cells[0]["text"])


def sandbox_printed(kernel: Kernel) -> str:
    _, text = kernel.ok("import json; print(json.dumps(res.outputs))")
    return "".join(o if o.endswith("\n") else o + "\n" for o in json.loads(text))


def answer_with(body: dict[str, Any]) -> Turn:
    return text_turn("Done: " + last_tool_result(body)[:200])


def test_expense_cell_reproduces_the_sandbox_output(kernel: Kernel, model_server: MessagesServer) -> None:
    for cell in EXPENSE_CELLS[:3]:
        kernel.ok(cell)
    model_server.add_turns(code_turn(over_budget_script()), answer_with)
    question = 'Who on team "platform" went over budget in 2026-10, and by how much?'
    reply, _ = kernel.ok(f"%codeagent --cell -o res {question}")
    source = inserted_cell(reply)
    printed = sandbox_printed(kernel)
    assert "members checked: 50" in printed

    asked = len(model_server.requests)
    _, output = kernel.ok(source)
    assert output == printed
    assert len(model_server.requests) == asked  # no model call
    assert source.startswith("# codeagent: the code claude-sonnet-5-5 ran for this question (1 script)")
    assert f"#   {question}" in source
    assert "NOT in the sandbox" in source and "get_team_members, get_expenses" in source
    # the tools are called as the stubs called them; the notebook's own functions keep their names
    assert "get_team_members_tool = notebook_tool('get_team_members')" in source
    _, kept = kernel.ok("print(type(get_team_members).__name__)")
    assert kept == "function\n"


def test_data_analysis_cell_reproduces_output_and_result(kernel: Kernel, model_server: MessagesServer) -> None:
    kernel.ok("%load_ext codeagent")
    kernel.ok(ORDERS)
    model_server.add_turns(code_turn(ANALYSIS_1), code_turn(ANALYSIS_2), answer_with)
    reply, _ = kernel.ok("%codeagent --cell=top_regions -o res --data orders Which two regions sell most?")
    source = inserted_cell(reply)
    printed = sandbox_printed(kernel)
    assert "north" in printed and "(4, 2)" in printed and "'regions': 4" in printed

    _, output = kernel.ok(source)
    assert output == printed
    assert "top_regions = top" in source and "# the totals per region" in source
    _, check = kernel.ok(
        "print(top_regions.equals(res.value), orders.equals(before), 'result' in globals(), "
        "len(res.scripts), len(res.tool_calls))"
    )
    assert check.split() == ["True", "True", "False", "2", "0"]

    # result.to_cell() makes the same cell for a finished result, under another name
    reply, shown = kernel.ok("res.to_cell('again')")
    assert shown == ""  # nothing echoed: the cell itself appears below
    again = inserted_cell(reply)
    assert "# It overwrites these notebook variables: by_region, top, row, region." in again  # the cell ran
    expected = source.replace("top_regions = top", "again = top").replace("`top_regions = ...`", "`again = ...`")
    assert [line for line in again.splitlines() if "overwrites" not in line] == expected.splitlines()


# -- tools in the cell are called the way the sandbox's stubs called them ----------------------------------

SPANS = """\
lo, hi = span("3")
print(span(4, width=1.0), type(span(1)).__name__, lo + hi)
print(span(2) == [2, 4], span(2) == (2, 4))
try:
    span("three")
except TypeError as e:  # the stub's argument check, in the sandbox and in the cell
    print("rejected:", type(e).__name__)
for key in ("k", 3):
    try:
        fail(key)
    except ToolError as e:  # a tool's own exception type: a ToolError of that name, its built-in base kept
        print("caught", type(e).__name__, isinstance(e, LookupError), e)
    except TypeError as e:
        print("not a str:", isinstance(e, ToolError))
"""


def test_cell_calls_tools_through_the_same_validation_and_json(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    from codeagent.tools import tool

    def span(start: int, width: int = 2) -> tuple[int, int]:
        """The start and the end of a span."""
        return (start, start + width)

    class Missing(LookupError):
        pass

    def fail(key: str) -> str:
        """Always fails."""
        raise Missing(f"no {key}")

    tool(span)
    tool(fail)
    shell.user_ns["span"] = span
    try:
        model_server.add_turns(code_turn(SPANS), answer_with)
        shell.rl_next_input = None
        with capture_output():
            res = shell.run_line_magic("codeagent", "--cell Where do the spans end?")
        source = shell.rl_next_input
        printed = res.scripts[0].output
        assert printed == (  # a tuple arrives as a list
            "[4, 5] list 8\nTrue False\nrejected: TypeError\ncaught Missing True no k\nnot a str: False\n"
        )
        asked = len(model_server.requests)
        with capture_output() as ran:
            shell.run_cell(source, store_history=False).raise_error()
        assert ran.stdout == printed
        assert len(model_server.requests) == asked
        assert shell.user_ns["span"] is span and span(1) == (1, 3)  # the notebook's function untouched
    finally:
        for name in ("span", "span_tool", "fail", "lo", "hi", "key"):
            shell.user_ns.pop(name, None)


# -- mentions and notebook context, through the magic in an InteractiveShell ----------------------------


@pytest.fixture
def frames(shell: Any) -> Iterator[None]:
    shell.user_ns["df"] = pd.DataFrame({"ref": [f"ROWVAL-{i}" for i in range(30)], "amount": np.arange(30.0)})
    shell.user_ns["sales"] = pd.DataFrame({"region": ["SECRETREGION"] * 7, "units": range(7)})
    shell.user_ns["weights"] = np.full((3, 4), 271828.0)
    yield
    for name in ("df", "sales", "weights"):
        shell.user_ns.pop(name, None)


def ask(shell: Any, server: MessagesServer, line: str) -> tuple[Any, dict[str, Any]]:
    server.add_turns(code_turn("print(type(df).__name__, df.shape, float(df['amount'].sum()))"), answer_with)
    before = len(server.message_requests)
    with capture_output():
        result = shell.run_line_magic("codeagent", line)
    return result, server.message_requests[before]


def system_of(body: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in body["system"])


def test_cell_without_a_script_says_so(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn("No code needed: 42."))
    shell.rl_next_input = None
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", "--cell What is six times seven?")
    assert result.answer == "No code needed: 42."
    assert "--cell: this call ran no script that succeeded" in captured.stderr
    assert shell.rl_next_input is None
    with pytest.raises(Exception, match="--cell takes a variable name"):
        shell.run_line_magic("codeagent", "--cell=not-a-name What?")


def test_mention_behaves_like_data(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, frames: None
) -> None:
    by_option, first = ask(shell, model_server, "--data df What is the total amount?")
    shell.run_line_magic("codeagent", "--new")
    by_mention, second = ask(shell, model_server, "What is the total amount of @df?")
    assert by_option.status == by_mention.status == "done"
    assert by_option.scripts[0].output == by_mention.scripts[0].output == "DataFrame (30, 2) 435.0\n"
    assert system_of(first) == system_of(second)
    assert "- `df`: pandas.DataFrame, 30 rows × 2 columns" in system_of(second)
    assert second["messages"][-1]["content"] == "What is the total amount of df?"


def test_emails_and_double_at_survive(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, frames: None
) -> None:
    model_server.add_turns(text_turn("ok"))
    with capture_output():
        shell.run_line_magic("codeagent", "Write to ana@df.io and @@sales, cc @nobody, about @@df.")
    body = model_server.message_requests[-1]
    assert body["messages"][-1]["content"] == "Write to ana@df.io and @sales, cc @nobody, about @df."
    assert "## Data from the notebook" not in system_of(body)  # nothing was handed over


def test_notebook_context_lists_names_and_shapes_never_a_row(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, frames: None
) -> None:
    model_server.add_turns(text_turn("ok"))
    with capture_output():
        shell.run_line_magic("codeagent", "--data df Plot something")
    body = model_server.message_requests[-1]
    system = system_of(body)
    assert "- `sales`: pandas.DataFrame, 7 rows × 2 columns (region, units)" in system
    assert "- `weights`: numpy.ndarray, shape (3, 4), dtype float64" in system
    assert "- `df`:" not in system.split("## Other variables in the notebook")[1]  # handed over, listed once
    sent = json.dumps(model_server.message_requests)
    assert "SECRETREGION" not in sent and "271828" not in sent and "ROWVAL" not in sent

    shell.run_line_magic("config", "CodeAgent.notebook_context = 'off'")
    try:
        model_server.add_turns(text_turn("ok"))
        with capture_output():
            shell.run_line_magic("codeagent", "Plot something")
        assert "sales" not in system_of(model_server.message_requests[-1])
    finally:
        shell.run_line_magic("config", "CodeAgent.notebook_context = 'names'")


# -- a data variable the question names by a bare word is handed over (implicit_mentions) -------------------

PLOT_SALES = """import matplotlib.pyplot as plt
print(type(sales).__name__, sales.shape, list(sales.columns), int(sales["units"].sum()))
plt.bar(range(len(sales)), sales["units"])
plt.title("units")
plt.show()
"""
SEES = "print({n: n in globals() for n in ('sales', 'df', 'weights', 'sales_df', 'odd')})"


def test_a_frame_the_question_names_is_handed_over(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, frames: None
) -> None:
    from codeagent.kernel_ext.magic import final_view

    shell.run_line_magic("codeagent", "--reset")
    model_server.add_turns(code_turn(PLOT_SALES), text_turn("plotted"))
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", "plot the sales frame")
    assert result.status == "done", result.error
    assert result.scripts[0].output.startswith("DataFrame (7, 2) ['region', 'units'] 21\n")
    assert [o for o in captured.outputs if len(o.data.get("image/png", "")) > 1000]  # the chart works
    assert result.handed_over == {"sales": "named in the question"}
    system = system_of(model_server.message_requests[-2])
    assert "- `sales`: pandas.DataFrame, 7 rows × 2 columns (handed over because the question names it)" in system
    assert "      region: " in system.split("## Data from the notebook")[1]  # the schema
    assert "- `sales`:" not in system.split("## Other variables in the notebook")[1]  # listed once
    assert "- `weights`: numpy.ndarray" in system  # not named: only listed
    assert "SECRETREGION" not in json.dumps(model_server.message_requests)  # schema, never a row
    view = final_view(result)
    assert "Notebook data handed to the sandbox: sales (named in the question)" in view["text/plain"]
    assert "sales (named in the question)" in view["text/html"]

    model_server.add_turns(code_turn(SEES), text_turn("ok"))
    with capture_output():
        seen = shell.run_line_magic("codeagent", "--new Which frames does @df go with? Also check weights.")
    assert seen.handed_over == {"df": "@df", "weights": "named in the question"}


def test_a_word_naming_no_variable_or_the_context_off_hands_nothing_over(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, frames: None
) -> None:
    shell.user_ns["odd"] = pd.DataFrame({"thing": [object(), object()]})  # cannot travel: left out, call goes on
    shell.user_ns["sales_df"] = pd.DataFrame({"x": [1]})
    try:
        for question, config in (
            ("plot the revenue frame, mail ana@sales.io about sales.csv and {{sales}}", None),
            ("plot the odd frame", None),
            ("plot the sales frame", "CodeAgent.notebook_context = 'off'"),
            ("plot the sales frame", "CodeAgent.implicit_mentions = False"),
        ):
            shell.run_line_magic("codeagent", "--reset")
            if config:
                shell.run_line_magic("config", config)
            try:
                model_server.add_turns(code_turn(SEES), text_turn("ok"))
                with capture_output():
                    result = shell.run_line_magic("codeagent", question)
            finally:
                shell.run_line_magic("config", "CodeAgent.notebook_context = 'names'")
                shell.run_line_magic("config", "CodeAgent.implicit_mentions = True")
            assert result.status == "done", (question, result.error)
            assert result.handed_over == {}, question
            assert "## Data from the notebook" not in system_of(model_server.message_requests[-2]), question
            assert "True" not in result.scripts[0].output, (question, result.scripts[0].output)
    finally:
        shell.user_ns.pop("odd", None)
        shell.user_ns.pop("sales_df", None)


def test_sales_df_is_named_by_the_word_sales(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, frames: None
) -> None:
    shell.user_ns["sales_df"] = shell.user_ns.pop("sales")
    try:
        shell.run_line_magic("codeagent", "--reset")
        model_server.add_turns(code_turn(SEES), text_turn("ok"))
        with capture_output():
            result = shell.run_line_magic("codeagent", "Plot Sales by region")
        assert result.handed_over == {"sales_df": "named in the question"}
        assert "'sales_df': True" in result.scripts[0].output and "'sales': False" in result.scripts[0].output
    finally:
        shell.user_ns["sales"] = shell.user_ns.pop("sales_df")
