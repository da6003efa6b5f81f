"""The benchmark's tasks: data, tools, the scripted model of each approach, and the ground truth.

Each task is run twice on the same tools and data. The *direct* model is one callable that reads the request
(what a model would see) and either calls the next tool or, once it has everything, answers from the tool
results in its context. The *codeagent* model writes one script that does the whole task and then answers
from what the script printed. Every answer is checked against ground truth computed from the generator.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codeagent.examples.expenses import ExpenseData, make_expense_data, over_budget_script
from codeagent.examples.expenses import expense_tools as example_tools
from codeagent.testing.messages_server import Turn, text_turn, tool_turn
from codeagent.tools.registry import Tool, make_tool

MONTH = "2026-10"
TEAM = "platform"
PER_MEMBER = 40

DirectModel = Callable[[dict[str, Any]], Turn]


@dataclass
class BenchTask:
    """One task, run once per approach."""

    name: str
    kind: str  # "expenses", "analysis", "lookup"
    size: int  # members, rows or 1 (the chart's x axis)
    question: str
    tools: list[Tool]
    direct_model: DirectModel  # reads each request, returns the next turn (tool call or answer)
    script: str  # what the codeagent model runs in the sandbox
    answer_from_output: Callable[[str], str]  # the codeagent model's answer, from the script's printed output
    check: Callable[[str], None]  # raises AssertionError if an answer is wrong
    registry: Any = None  # the tools to run (a ToolBox with MCP servers); None: a registry of ``tools``
    direct_names: dict[str, str] | None = None  # direct tool name → codeagent's name (MCP tools: "ns.tool")


# -- reading a request the way a model would ----------------------------------------------------------------


def tool_exchanges(body: dict[str, Any]) -> list[tuple[str, dict[str, Any], str | None]]:
    """``(tool name, input, result text or None)`` for every tool_use in the request's messages, in order."""
    uses: list[tuple[str, str, dict[str, Any]]] = []
    results: dict[str, str] = {}
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "tool_use":
                uses.append((block["id"], block["name"], block.get("input", {})))
            elif block.get("type") == "tool_result":
                results[block["tool_use_id"]] = _result_text(block.get("content"))
    return [(name, args, results.get(use_id)) for use_id, name, args in uses]


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


# -- the expense agent ----------------------------------------------------------------------------------------


def expense_tools(data: ExpenseData) -> list[Tool]:
    """The expense toolbox: the two tools of the example plus a single-member lookup."""

    def find_member(name: str) -> dict:
        """One member by exact name: {"id": str, "name": str, "budget": float}; KeyError if there is none."""
        for m in data.members:
            if m["name"] == name:
                return dict(m)
        raise KeyError(f"no member named {name!r}")

    return [make_tool(f) for f in (*example_tools(data), find_member)]


OVER_BUDGET_SCRIPT = over_budget_script(TEAM, MONTH)

_OVER_LINE = re.compile(r"^- (Member \d{4}): ([\d.]+)$", re.MULTILINE)


def _over_budget_answer(over: dict[str, float], checked: int) -> str:
    lines = [f"- {name}: {amount:.2f}" for name, amount in sorted(over.items())]
    head = f"{len(over)} of {checked} members of team {TEAM} went over budget in {MONTH} (amount over budget):"
    return "\n".join([head, *lines])


def expense_direct_model(body: dict[str, Any]) -> Turn:
    """Direct tool calling, one call per turn: list the members, fetch each one's expenses, then answer."""
    exchanges = tool_exchanges(body)
    if not exchanges:
        return tool_turn("get_team_members", {"team": TEAM})
    members = json.loads(exchanges[0][2] or "[]")
    fetched = len(exchanges) - 1
    if fetched < len(members):
        return tool_turn("get_expenses", {"member_id": members[fetched]["id"], "month": MONTH})
    over = {}
    for member, (_, _, rows_json) in zip(members, exchanges[1:], strict=True):
        total = sum(e["amount"] for e in json.loads(rows_json or "[]"))
        if total > member["budget"]:
            over[member["name"]] = round(total - member["budget"], 2)
    return text_turn(_over_budget_answer(over, len(members)))


def expense_answer_from_output(output: str) -> str:
    over = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(Member \d{4}): ([\d.]+)$", output, re.MULTILINE)}
    checked = re.search(r"members checked: (\d+)", output)
    return _over_budget_answer(over, int(checked.group(1)) if checked else 0)


def expense_task(members: int) -> BenchTask:
    data = make_expense_data(members=members, per_member=PER_MEMBER, month=MONTH, team=TEAM)
    truth = data.over_budget(MONTH)

    def check(answer: str) -> None:
        got = {name: float(amount) for name, amount in _OVER_LINE.findall(answer)}
        assert got.keys() == truth.keys(), f"wrong members over budget: {sorted(got.keys() ^ truth.keys())[:5]}"
        wrong = {k: (got[k], truth[k]) for k in truth if abs(got[k] - truth[k]) > 0.005}
        assert not wrong, f"wrong amounts: {list(wrong.items())[:5]}"
        assert f"of {members} members" in answer, "the answer does not say how many members were checked"

    return BenchTask(
        name=f"expenses, {members:,} members",
        kind="expenses",
        size=members,
        question=f'Who on team "{TEAM}" went over budget in {MONTH}, and by how much?',
        tools=expense_tools(data),
        direct_model=expense_direct_model,
        script=OVER_BUDGET_SCRIPT,
        answer_from_output=expense_answer_from_output,
        check=check,
    )


# -- the small lookup -----------------------------------------------------------------------------------------

LOOKUP_NAME = "Member 0042"
_BUDGET = re.compile(r"budget is ([\d,]+\.\d\d)")


def lookup_task(members: int = 100) -> BenchTask:
    """One tool call answers it: the case where keeping data out of the context saves little."""
    data = make_expense_data(members=members, per_member=PER_MEMBER, month=MONTH, team=TEAM)
    truth = next(m for m in data.members if m["name"] == LOOKUP_NAME)

    def answer(member: dict[str, Any]) -> str:
        return f"{member['name']} ({member['id']}): the monthly budget is {member['budget']:,.2f}."

    def direct_model(body: dict[str, Any]) -> Turn:
        exchanges = tool_exchanges(body)
        if not exchanges:
            return tool_turn("find_member", {"name": LOOKUP_NAME})
        return text_turn(answer(json.loads(exchanges[-1][2] or "{}")))

    def answer_from_output(output: str) -> str:
        member_id, budget = output.split()[:2]
        return answer({"name": LOOKUP_NAME, "id": member_id, "budget": float(budget)})

    def check(text: str) -> None:
        found = _BUDGET.search(text)
        assert found, f"no budget in the answer {text!r}"
        assert float(found.group(1).replace(",", "")) == truth["budget"], f"wrong budget in {text!r}"
        assert truth["id"] in text, f"wrong member in {text!r}"

    return BenchTask(
        name="lookup, 1 tool call",
        kind="lookup",
        size=1,
        question=f"What is the monthly budget of {LOOKUP_NAME}?",
        tools=expense_tools(data),
        direct_model=direct_model,
        script=f'm = find_member("{LOOKUP_NAME}")\nprint(m["id"], m["budget"])\n',
        answer_from_output=answer_from_output,
        check=check,
    )


# -- data analysis over SQLite --------------------------------------------------------------------------------

REGIONS = ("north", "south", "east", "west", "central")
PRODUCTS = ("widget", "gadget", "gizmo", "doohickey", "sprocket", "flange")
THRESHOLD = 500


def make_sales_rows(rows: int = 10_000, seed: int = 11) -> list[dict[str, Any]]:
    """``rows`` orders of 2026, deterministic: id, day, region, product, amount."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        region = rng.choice(REGIONS)
        scale = 1.0 + REGIONS.index(region) * 0.15
        out.append(
            {
                "id": i + 1,
                "day": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                "region": region,
                "product": rng.choice(PRODUCTS),
                "amount": round(rng.lognormvariate(5.6, 0.6) * scale, 2),
            }
        )
    return out


def make_sales_db(rows: list[dict[str, Any]]) -> sqlite3.Connection:
    """An in-memory SQLite database with one table ``orders``, read-only once filled."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, day TEXT, region TEXT, product TEXT, amount REAL)")
    db.executemany("INSERT INTO orders VALUES (:id, :day, :region, :product, :amount)", rows)
    db.commit()
    db.execute("PRAGMA query_only = ON")
    return db


def region_summary(pairs: list[tuple[str, float]]) -> dict[str, tuple[int, float, float]]:
    """region → (orders, median amount, % of orders over THRESHOLD)."""
    by_region: dict[str, list[float]] = {}
    for region, amount in pairs:
        by_region.setdefault(region, []).append(amount)
    return {
        r: (len(v), round(statistics.median(v), 2), round(100 * sum(a > THRESHOLD for a in v) / len(v), 1))
        for r, v in sorted(by_region.items())
    }


def _summary_answer(summary: dict[str, tuple[int, float, float]]) -> str:
    lines = [
        f"- {r}: {n} orders, median {med:.2f}, {share:.1f}% over {THRESHOLD}" for r, (n, med, share) in summary.items()
    ]
    return "\n".join(["Orders in 2026 by region (median order amount, share of orders over 500):", *lines])


_SUMMARY_LINE = re.compile(r"^- (\w+): (\d+) orders, median ([\d.]+), ([\d.]+)% over", re.MULTILINE)

SQL_ALL = "SELECT region, amount FROM orders"

ANALYSIS_SCRIPT = f"""\
import statistics
rows = run_query("{SQL_ALL}")
by_region = {{}}
for r in rows:
    by_region.setdefault(r["region"], []).append(r["amount"])
for region, amounts in sorted(by_region.items()):
    share = 100 * sum(a > {THRESHOLD} for a in amounts) / len(amounts)
    print(f"{{region}} {{len(amounts)}} {{round(statistics.median(amounts), 2):.2f}} {{round(share, 1):.1f}}")
print("rows", len(rows))
"""


def analysis_task(rows: int = 10_000) -> BenchTask:
    """A query returning ``rows`` rows, summarised (median and share over a threshold: not plain SQLite)."""
    data = make_sales_rows(rows)
    db = make_sales_db(data)
    truth = region_summary([(r["region"], r["amount"]) for r in data])

    def run_query(sql: str) -> list[dict]:
        """Run one read-only SQL query on the sales database (SQLite) and return the rows as dicts.

        Table orders(id INTEGER, day TEXT 'YYYY-MM-DD', region TEXT, product TEXT, amount REAL): one row per
        order of 2026.
        """
        cursor = db.execute(sql)
        names = [c[0] for c in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def direct_model(body: dict[str, Any]) -> Turn:
        exchanges = tool_exchanges(body)
        if not exchanges:
            return tool_turn("run_query", {"sql": SQL_ALL})
        fetched = json.loads(exchanges[-1][2] or "[]")
        return text_turn(_summary_answer(region_summary([(r["region"], r["amount"]) for r in fetched])))

    check = summary_check(truth)

    return BenchTask(
        name=f"data analysis, {rows:,}-row query",
        kind="analysis",
        size=rows,
        question="For each region, what were the median order amount and the share of orders over 500 in 2026?",
        tools=[make_tool(run_query)],
        direct_model=direct_model,
        script=ANALYSIS_SCRIPT,
        answer_from_output=summary_from_output,
        check=check,
    )


def all_tasks(member_counts: tuple[int, ...] = (10, 100, 1_000), rows: int = 10_000) -> list[BenchTask]:
    return [*(expense_task(n) for n in member_counts), analysis_task(rows), lookup_task()]


# -- synthetic toolboxes for the tool-definition comparison ---------------------------------------------------

_DOMAINS = ("crm", "billing", "inventory", "hr", "tickets", "analytics", "calendar", "storage", "shipping", "auth")
_VERBS = ("get", "list", "search", "create", "update", "delete", "count", "export")
_NOUNS = ("account", "invoice", "order", "employee", "ticket", "report", "event", "file", "customer", "shipment")
_PARAMS: tuple[tuple[str, Any, str], ...] = (
    ("account_id", str, "The account's identifier, e.g. 'acc_123'."),
    ("limit", int, "Maximum number of records to return."),
    ("query", str, "Free-text search terms."),
    ("since", str, "Only records changed on or after this ISO date (YYYY-MM-DD)."),
    ("include_archived", bool, "Also return archived records."),
    ("tags", list[str], "Only records carrying all of these tags."),
    ("amount", float, "Amount in the account's currency."),
    ("status", str, "One of 'open', 'pending', 'closed'."),
)
_DEFAULTS: dict[str, Any] = {"limit": 50, "include_archived": False, "since": None, "tags": None, "status": None}


def synthetic_tools(count: int, seed: int = 3) -> list[Tool]:
    """``count`` distinct, realistic-looking tools with 1–4 typed, documented parameters each."""
    import inspect

    rng = random.Random(seed)
    tools = []
    for i in range(count):
        domain, verb, noun = _DOMAINS[i % 10], _VERBS[(i // 10) % 8], _NOUNS[(i // 80) % 10]
        name = f"{domain}_{verb}_{noun}" + (f"_v{i // 800 + 1}" if i >= 800 else "")
        chosen = rng.sample(_PARAMS, rng.randint(1, 4))
        chosen.sort(key=lambda p: p[0] in _DEFAULTS)  # required parameters first
        params = []
        for pname, ptype, _ in chosen:
            optional = pname in _DEFAULTS
            annotation = (ptype | None) if optional and _DEFAULTS[pname] is None else ptype
            default = _DEFAULTS[pname] if optional else inspect.Parameter.empty
            params.append(
                inspect.Parameter(
                    pname, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation
                )
            )
        args_doc = "\n".join(f"    {pname}: {doc}" for pname, _, doc in chosen)
        doc = (
            f"{verb.capitalize()} {noun} records in the {domain} system.\n\n"
            f"Returns a list of {noun} dicts with their id, name, status and timestamps.\n\n"
            f"Args:\n{args_doc}"
        )

        def func(**kwargs: Any) -> list[dict]:
            return []

        func.__name__ = func.__qualname__ = name
        func.__doc__ = doc
        func.__signature__ = inspect.Signature(params, return_annotation=list[dict])  # type: ignore[attr-defined]
        func.__annotations__ = {p.name: p.annotation for p in params} | {"return": list[dict]}
        tools.append(make_tool(func))
    return tools


def summary_from_output(output: str) -> str:
    """The answer a script's printed per-region lines give (``REGION n median share``), as the model would."""
    summary = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in REGIONS:
            summary[parts[0]] = (int(parts[1]), float(parts[2]), float(parts[3]))
    return _summary_answer(dict(sorted(summary.items())))


def summary_check(truth: dict[str, tuple[int, float, float]]) -> Callable[[str], None]:
    """A checker that an answer states ``truth``'s per-region summary exactly."""

    def check(answer: str) -> None:
        got = {r: (int(n), float(med), float(share)) for r, n, med, share in _SUMMARY_LINE.findall(answer)}
        assert got == truth, f"wrong summary: {got} != {truth}"

    return check
