"""Scripts → one notebook cell (ast rewriting), ``@name`` mentions, notebook context, ``--cell`` parsing."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from codeagent.agent.notebook_cell import CellError, cell_source
from codeagent.agent.trace import CodeAgentResult, ScriptRun
from codeagent.kernel_ext.context import MAX_VARIABLES, notebook_context
from codeagent.kernel_ext.mentions import mention_completions, take_mentions
from codeagent.kernel_ext.options import split_options
from codeagent.tools.local import LocalTool
from codeagent.tools.registry import ToolRegistry, tool


def double(i: int) -> int:
    """Twice i."""
    return i * 2


def result_of(*scripts: tuple[str, str], prompt: str = "How much?", model: str = "claude-test") -> CodeAgentResult:
    result = CodeAgentResult(prompt=prompt, model=model, status="done")
    result.scripts = [ScriptRun(step=i + 1, code=code, status=status) for i, (code, status) in enumerate(scripts)]
    return result


def run(source: str, namespace: dict[str, Any]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<cell>", "exec"), namespace)
    return out.getvalue()


@pytest.fixture
def tools(registry: ToolRegistry) -> ToolRegistry:
    """The notebook's registry (the one ``notebook_tool`` reads in a cell) holding ``double``."""
    tool(double, registry=registry)
    return registry


def test_set_result_becomes_an_assignment_wherever_it_is_called(tools: ToolRegistry) -> None:
    result = result_of(
        ("vals = [double(i) for i in range(4)]\nif vals:\n    set_result(sum(vals))\nprint('sum', sum(vals))", "ok"),
        ("def keep(v):\n    set_result(v)\nkeep(vals[-1])\nprint([set_result(value=\n    vals[0])][0])", "ok"),
    )
    source = cell_source(result, tools, {"double": double}, variable="total")
    assert "set_result" not in source.split("\n", 6)[-1]  # only the comment on top still says the word
    ast.parse(source)
    namespace: dict[str, Any] = {"double": double}
    assert run(source, namespace) == "sum 12\nNone\n"
    assert namespace["total"] == 0  # the last call wins: set_result(value=vals[0])
    one = cell_source(result_of(("set_result(double(2))", "ok")), tools, {"double": double})
    assert one.rstrip().endswith("result = double_tool(2)")


def test_tools_are_called_through_notebook_tool_and_comments_stay(tools: ToolRegistry) -> None:
    script = "# the model's comment\nx = double(21)  # café\nprint(x)\n"
    source = cell_source(result_of((script, "ok")), tools, {})
    assert source.endswith("double = notebook_tool('double')\n\n" + script)  # nothing else to rewrite
    # the notebook's own function keeps its name and stays the plain function: the cell uses an alias
    mine = cell_source(result_of((script, "ok")), tools, {"double": double})
    assert "double_tool = notebook_tool('double')" in mine and "x = double_tool(21)  # café" in mine
    namespace: dict[str, Any] = {"double": double}
    assert run(mine, namespace) == "42\n" and namespace["double"] is double
    again = cell_source(result_of((script, "ok")), tools, namespace)  # after a run: the same alias, rebound
    assert "x = double_tool(21)" in again and "double_tool2" not in again


def test_a_tool_the_notebook_does_not_hold_is_bound_by_name(tools: ToolRegistry) -> None:
    source = cell_source(result_of(("print(double(4))", "ok")), tools, {})
    assert "from codeagent.tools import notebook_tool\ndouble = notebook_tool('double')" in source
    # a notebook variable of the same name that is not the tool is left alone: the cell uses an alias
    taken = cell_source(result_of(("print(double(4))", "ok")), tools, {"double": 3})
    assert "double_tool = notebook_tool('double')" in taken and "print(double_tool(4))" in taken


def test_aio_and_async_tools_go_through_local_tool(shell: Any) -> None:
    registry = ToolRegistry()

    async def fetch(i: int) -> int:
        """Async."""
        return i + 100

    tool(fetch, registry=registry)
    tool(double, registry=registry)
    script = (
        "import asyncio\n"
        "a = await asyncio.gather(*[double.aio(i) for i in range(3)])\n"
        "b = await asyncio.gather(fetch.aio(1), fetch.aio(2))\n"
        "try:\n    double('x', 'y')\nexcept TypeError as e:\n    print('caught', type(e).__name__)\n"
        "print(a, b, fetch(3))\n"
    )
    source = cell_source(result_of((script, "ok")), registry, {"double": double})
    assert "double_tool = notebook_tool('double')" in source and "fetch = notebook_tool('fetch')" in source
    import codeagent.tools.registry as reg

    saved = dict(reg.default_registry._tools)
    try:
        reg.default_registry._tools.update({"fetch": registry.get("fetch"), "double": registry.get("double")})
        shell.user_ns["double"] = double
        with contextlib.redirect_stdout(io.StringIO()) as out:
            shell.run_cell(source, store_history=False).raise_error()
        assert out.getvalue() == "caught TypeError\n[0, 2, 4] [101, 102] 103\n"
        assert isinstance(shell.user_ns["fetch"], LocalTool)
    finally:
        reg.default_registry._tools.clear()
        reg.default_registry._tools.update(saved)
        for name in ("double", "fetch", "double_tool", "a", "b", "asyncio"):
            shell.user_ns.pop(name, None)


def test_scripts_are_concatenated_failed_ones_left_out_and_earlier_values_displayed(tools: ToolRegistry) -> None:
    result = result_of(
        ("for i in range(3)\n    print(i)", "error"),
        ("table = {'a': double(1)}\ntable", "ok"),
        ("print(table['a'])\nprint('done')", "ok"),
        prompt="Line one\nline two",
    )
    source = cell_source(result, tools, {"double": double})
    assert "# --- script 2 ---" in source and "# --- script 3 ---" in source and "range(3)\n" not in source
    assert "Left out: script 1, which failed in the sandbox." in source
    assert "display(table)" in source and "from IPython.display import display" in source
    head = source.splitlines()[:5]
    assert head[0].startswith("# codeagent: the code claude-test ran for this question (2 scripts)")
    assert head[1:3] == ["#   Line one", "#   line two"]
    assert "NOT in the sandbox: you chose to run it" in head[3]


def test_header_names_the_notebook_variables_it_uses_and_overwrites(tools: ToolRegistry) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    script = "total = int(orders['a'].sum())\nprint(total)"
    source = cell_source(result_of((script, "ok")), tools, {"orders": frame, "total": 7})
    assert "# It uses these notebook variables (the sandbox had copies): orders." in source
    assert "# It overwrites these notebook variables: total." in source


def test_nothing_to_put_in_a_cell_is_a_clear_error(tools: ToolRegistry) -> None:
    with pytest.raises(CellError, match="no script that succeeded"):
        cell_source(result_of(("1/0", "error")), tools, {})
    with pytest.raises(CellError, match="must be a Python name"):
        cell_source(result_of(("print(1)", "ok")), tools, {}, variable="not a name")


def test_ipython_syntax_is_kept_as_written(tools: ToolRegistry) -> None:
    source = cell_source(result_of(("!echo hi\nprint(1)", "ok")), tools, {})
    assert "!echo hi\nprint(1)" in source and "kept as written" in source


# -- @name mentions -------------------------------------------------------------------------------------


def test_mentions_hand_over_variables_and_leave_everything_else() -> None:
    namespace = {"df": pd.DataFrame(), "prices": np.zeros(2), "example": 1, "np": np, "double": double}
    text, names = take_mentions(
        "Compare @df with @prices, mail bob@example.com (not @example.com? yes @example) about @@df, "
        "@nobody, @np, @double and @df again.",
        namespace,
    )
    assert names == ["df", "prices", "example"]
    assert text == (
        "Compare df with prices, mail bob@example.com (not example.com? yes example) about @df, "
        "@nobody, @np, @double and df again."
    )
    assert take_mentions("@@ and a@@b", namespace) == ("@ and a@b", [])
    assert take_mentions("@df", namespace, reserved={"df"}) == ("@df", [])
    assert mention_completions("p", namespace) == ["@prices"]


# -- notebook context -----------------------------------------------------------------------------------


def test_context_lists_names_types_and_shapes_never_values() -> None:
    import pyarrow as pa

    sales = pd.DataFrame({"region": ["SECRET-NORTH", "SECRET-SOUTH"], "amount": [111.5, 222.5]})
    namespace = {
        "sales": sales,
        "weights": np.array([[31337.0, 2.0]]),
        "s": pd.Series([424242], name="hits"),
        "t": pa.table({"k": ["SECRET-ARROW"]}),
        "note": "SECRET-STRING",
        "_private": np.zeros(3),
        "handed": np.zeros(5),
    }
    text = notebook_context(namespace, exclude={"handed"})
    assert "- `sales`: pandas.DataFrame, 2 rows × 2 columns (region, amount)" in text
    assert "- `weights`: numpy.ndarray, shape (1, 2), dtype float64" in text
    assert "- `s`: pandas.Series 'hits', 1 values, dtype int64" in text
    assert "- `t`: pyarrow.Table, 1 rows × 1 columns (k)" in text
    for secret in ("SECRET", "31337", "424242", "111.5", "_private", "`handed`", "`note`"):
        assert secret not in text
    assert notebook_context({"x": 1, "y": "text"}) == ""


def test_context_is_capped() -> None:
    many = {f"a{i:03d}": np.zeros(i + 1) for i in range(MAX_VARIABLES + 30)}
    lines = [line for line in notebook_context(many).splitlines() if line.startswith("- ")]
    assert len(lines) == MAX_VARIABLES + 1 and lines[-1] == "- … and 30 more"


# -- --cell on the magic line ---------------------------------------------------------------------------


def test_cell_option_never_eats_the_question() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cell", nargs="?", const="result")
    parser.add_argument("--data")
    tokens, prompt = split_options("--cell Who went over budget?", parser)
    assert (tokens, prompt) == (["--cell"], "Who went over budget?")
    assert parser.parse_args(tokens).cell == "result"
    tokens, prompt = split_options("--cell=total --data df Sum it", parser)
    assert parser.parse_args(tokens).cell == "total" and prompt == "Sum it"


# -- tab completion after @ -------------------------------------------------------------------------------


def test_at_completes_data_variables_in_codeagent_questions_only(shell: Any) -> None:
    from IPython.core.completer import provisionalcompleter

    shell.user_ns.update({"sales": pd.DataFrame(), "salary": 3, "sal_fn": len})

    def complete(text: str) -> list[str]:
        with provisionalcompleter():
            return [c.text for c in shell.Completer.completions(text, len(text))]

    try:
        assert complete("%codeagent plot @sa") == ["salary", "sales"]
        assert complete("%%codeagent --data x\nplot @sal") == ["salary", "sales"]
        assert "sal_fn" in complete("x = sa")  # ordinary code keeps its completions
        assert "sal_fn" in complete("%codeagent mail bob@sa")  # an e-mail address is not a mention
    finally:
        for name in ("sales", "salary", "sal_fn"):
            shell.user_ns.pop(name, None)


def test_sandbox_exceptions_and_approvals(registry: ToolRegistry) -> None:
    tool(double, registry=registry, approve=True)
    script = "try:\n    print(double(2))\nexcept (ToolDenied, BudgetExceeded, ToolError) as e:\n    print('no', e)\n"
    source = cell_source(result_of((script, "ok")), registry, {"double": double})
    assert "except (PermissionError, RuntimeError, ToolError) as e:" in source
    assert "from codeagent.tools import notebook_tool, ToolError" in source
    assert "# No approval is asked for double here: running this cell is your approval." in source
    assert run(source, {"double": double}) == "4\n"


def test_bare_words_name_data_variables() -> None:
    from codeagent.kernel_ext.handover import named_in_question
    from codeagent.kernel_ext.mentions import named_variables

    names = ["sales", "weights", "df_orders", "orders_df", "a", "data", "Prices"]
    assert named_variables("plot the sales frame", names) == ["sales"]
    assert named_variables("Compare orders with prices. Sales!", names) == ["df_orders", "orders_df", "Prices", "sales"]
    assert named_variables("plot orders_df", names) == ["orders_df"]  # the exact name wins over the affixed forms
    quiet = "mail ana@sales.io, load sales.csv, {sales}, @sales, plot a histogram of the data"
    assert named_variables(quiet, names) == []
    namespace = {
        "sales_df": pd.DataFrame({"x": [1]}),
        "sales_total": 3,  # not data: never handed over implicitly
        "_sales": pd.DataFrame(),
        "salesy": np.zeros(2),
    }
    assert named_in_question("sales and sales_total", namespace) == ["sales_df"]
    assert named_in_question("sales", namespace, exclude={"sales_df"}) == []
