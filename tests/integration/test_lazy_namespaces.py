"""An MCP server's namespace in the sandbox builds a tool's stub on first access (hundreds of tools, few used)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from benchmarks.tool_search import DATA, catalog_tools
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry

SCRIPT = """\
import inspect
built = lambda: sorted(a for a in vars(ledgerly) if not a.startswith("_"))
print(built(), len(dir(ledgerly)))
f = ledgerly.list_invoices
print(built(), ledgerly.list_invoices is f, f.__qualname__)
print(inspect.signature(ledgerly.get_invoice))
for attempt in ("ledgerly.nope", "setattr(ledgerly, 'list_invoices', print)", "delattr(ledgerly, 'get_invoice')"):
    try:
        eval(attempt)
    except AttributeError as e:
        print(e)
print(repr(docvault)[:40])
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxKernel]:
    with SandboxKernel() as kernel:
        yield kernel


def test_stubs_are_built_on_first_access_and_stay_read_only(sandbox: SandboxKernel) -> None:
    tools = catalog_tools(json.loads((DATA / "tool_catalog.json").read_text()))[:1_000]
    sandbox.set_tools([t.spec() for t in tools])
    result = sandbox.execute(SCRIPT, ToolDispatcher(ToolRegistry()))
    assert result.error_name is None, result.output
    lines = result.output.splitlines()
    ledgerly = sum(t.namespace == "ledgerly" for t in tools)
    assert lines[0] == f"[] {ledgerly}"
    assert lines[1] == "['list_invoices'] True ledgerly.list_invoices"
    assert lines[2].startswith("(id: 'str', *, customer_id: 'str | None' = None") and " -> " in lines[2]
    assert lines[3] == "MCP server ledgerly has no tool 'nope'; see dir(ledgerly) or search_tools()"
    assert lines[4:6] == ["the tools of ledgerly cannot be replaced", "the tools of ledgerly cannot be removed"]
    assert lines[6].startswith("<tools of MCP server docvault: ")
