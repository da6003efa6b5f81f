"""The expense example as a notebook executed by nbclient, in a real notebook kernel."""

from __future__ import annotations

import json
import re
from typing import Any

import nbformat
from nbclient import NotebookClient

from codeagent.examples.expenses import make_expense_data
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, text_turn

SCRIPT = """
over = {}
for m in get_team_members("platform"):
    total = sum(e["amount"] for e in get_expenses(m["id"], "2026-10"))
    if total > m["budget"]:
        over[m["name"]] = round(total - m["budget"], 2)
print(over)
"""

CELLS = [
    "%load_ext codeagent",
    "from codeagent import tool\n"
    "from codeagent.examples.expenses import make_expense_data\n"
    "data = make_expense_data(members=50, per_member=40, month='2026-10')",
    "@tool\n"
    "def get_team_members(team: str) -> list[dict]:\n"
    '    """Members of a team: [{"id": str, "name": str, "budget": float}]."""\n'
    "    return data.get_team_members(team)\n\n"
    "@tool\n"
    "def get_expenses(member_id: str, month: str) -> list[dict]:\n"
    '    """Expenses of one member in a month (YYYY-MM): [{"amount": float, "merchant": str, "date": str}]."""\n'
    "    return data.get_expenses(member_id, month)",
    "before = sorted(k for k in globals() if not k.startswith('_'))",
    '%codeagent -o res Who on team "platform" went over budget in 2026-10, and by how much?',
    "after = sorted(k for k in globals() if not k.startswith('_'))\n"
    "print(res.status, len(res.tool_calls), sorted(set(after) - set(before) - {'before'}))",
]


def answer_with_output(body: dict[str, Any]) -> Turn:
    tool_result = body["messages"][-1]["content"][0]["content"]
    return text_turn(f"Over budget: {tool_result.strip()}")


def test_expense_notebook_runs_under_nbclient(model_server: MessagesServer, tmp_path: Any) -> None:
    model_server.add_turns(code_turn(SCRIPT), answer_with_output)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    truth = make_expense_data(members=50, per_member=40, month="2026-10").over_budget("2026-10")
    magic_outputs = nb.cells[4].outputs
    final = [o for o in magic_outputs if o.output_type == "execute_result" and "text/html" in o.data][-1]
    answer = re.search(r"Over budget: (\{.*?\})", final.data["text/plain"])
    assert answer is not None
    assert json.loads(answer.group(1).replace("'", '"')) == truth
    assert "<details" in final.data["text/html"]
    check = "".join(o.get("text", "") for o in nb.cells[5].outputs)
    assert check.strip() == "done 51 ['res']"  # the only new notebook variable is the one -o asked for

    data = make_expense_data(members=50, per_member=40, month="2026-10")
    sent = json.dumps(model_server.requests)
    assert not any(e["merchant"] in sent for rows in data.expenses.values() for e in rows)
