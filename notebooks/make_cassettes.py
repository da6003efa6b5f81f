"""Make the example notebooks' cassettes from scripted model turns, then replay them to save the outputs.

    python notebooks/make_cassettes.py [quickstart data_analysis ...]

For each notebook: delete its cassette, run it with nbclient against codeagent's local Messages API server
(``codeagent.testing.messages_server``) answering with the turns below, so the notebook's ``auto`` cassette
mode records every turn; mark the cassette ``"source": "scripted, not recorded from a live model"``; run the
notebook again offline (no key, API unreachable) so it replays, and save the executed notebook. The
quickstart and its cassette are also copied into the package (``codeagent/examples/``) for
``python -m codeagent demo``.

Scripted turns are written by hand (no API access was available), but the scripts in them really run in the
sandbox against the notebook's real tools, and the answers are built from what those scripts printed.
"""

from __future__ import annotations

import calendar
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from codeagent.agent.cassette import SCRIPTED, Cassette  # noqa: E402
from codeagent.examples.runner import kernel_env, run_notebook  # noqa: E402
from codeagent.testing.messages_server import (  # noqa: E402
    MessagesServer,
    Turn,
    TurnItem,
    code_turn,
    text_turn,
    tool_turn,
)

PACKAGE_EXAMPLES = HERE.parent / "codeagent" / "examples"


def tool_results(body: dict[str, Any]) -> list[str]:
    """The contents of the tool_result blocks in the newest user message the model was sent."""
    message = body["messages"][-1]
    blocks = message["content"] if isinstance(message["content"], list) else []
    return [str(b["content"]) for b in blocks if b.get("type") == "tool_result"]


def last_output(body: dict[str, Any]) -> str:
    results = tool_results(body)
    if not results:
        raise AssertionError("the model was not sent a tool_result")
    return results[-1]


# -- quickstart ----------------------------------------------------------------------------------------

OVER_BUDGET = """\
members = get_team_members("platform")
over = []
for m in members:
    total = sum(e["amount"] for e in get_expenses(m["id"], "2026-10"))
    if total > m["budget"]:
        over.append((total - m["budget"], m["name"], total, m["budget"]))
print(f"members checked: {len(members)}, over budget: {len(over)}")
for amount, name, total, budget in sorted(over, reverse=True):
    print(f"{name}: spent {total:,.2f} of {budget:,.0f}, over by {amount:,.2f}")
"""


def quickstart_answer(body: dict[str, Any]) -> Turn:
    lines = re.findall(r"^(Member \d{4}): spent ([\d,.]+) of ([\d,]+), over by ([\d,.]+)$", last_output(body), re.M)
    rows = "\n".join(f"| {name} | {spent} | {budget} | **{over}** |" for name, spent, budget, over in lines)
    return text_turn(
        f"{len(lines)} members of team **platform** went over budget in 2026-10:\n\n"
        f"| member | spent | budget | over by |\n|---|---:|---:|---:|\n{rows}\n\n"
        "Everyone else stayed within budget."
    )


QUICKSTART: list[TurnItem] = [
    code_turn(OVER_BUDGET, text="I'll total each member's October expenses against their budget in one script."),
    quickstart_answer,
]

# -- data analysis -------------------------------------------------------------------------------------

EXPLORE = """\
for table in ("regions", "products", "orders"):
    columns = [c["name"] for c in run_query(f"PRAGMA table_info({table})")]
    count = run_query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
    print(f"{table}: {count} rows, columns {columns}")
print(run_query("SELECT MIN(day) AS first, MAX(day) AS last FROM orders")[0])
print(run_query("SELECT DISTINCT category FROM products ORDER BY category"))
"""

ANALYSE = """\
import matplotlib.pyplot as plt

rows = run_query(\"\"\"
    SELECT substr(o.day, 1, 7) AS month, p.category, SUM(o.quantity * p.unit_price_cents) AS cents
    FROM orders o JOIN products p ON p.id = o.product_id
    GROUP BY month, p.category ORDER BY month\"\"\")
months = sorted({r["month"] for r in rows})
categories = sorted({r["category"] for r in rows})
revenue = {(r["month"], r["category"]): r["cents"] / 100 for r in rows}

fig, ax = plt.subplots(figsize=(8, 4))
for category in categories:
    ax.plot([m[5:] for m in months], [revenue.get((m, category), 0) / 1000 for m in months], marker="o", label=category)
ax.set_xlabel("month of 2025")
ax.set_ylabel("revenue (thousands)")
ax.set_title("Monthly revenue per category")
ax.legend()
fig.tight_layout()
plt.show()

totals = {c: sum(revenue.get((m, c), 0) for m in months) for c in categories}
for category in sorted(categories, key=totals.get, reverse=True):
    best = max(months, key=lambda m: revenue.get((m, category), 0))
    print(f"{category}: total {totals[category]:,.0f}; peak {best} ({revenue[(best, category)]:,.0f})")
"""


def analyse_turn(body: dict[str, Any]) -> Turn:
    if "orders: 6000 rows" not in last_output(body):
        raise AssertionError(f"unexpected exploration output: {last_output(body)!r}")
    return code_turn(ANALYSE, text="Now the monthly revenue per category, with a chart.")


def analysis_answer(body: dict[str, Any]) -> Turn:
    output = last_output(body)
    found = re.findall(r"^(\w+): total ([\d,]+); peak (\d{4}-\d{2}) \(([\d,]+)\)$", output, re.M)
    figure = re.search(r"\[figure \d+[^\]]*\]", output)
    if not found or not figure:
        raise AssertionError(f"unexpected analysis output: {output!r}")
    rows = "\n".join(f"| {c} | {t} | {calendar.month_name[int(p[5:])]} | {v} |" for c, t, p, v in found)
    return text_turn(
        f"Revenue in 2025 by category, highest first (the chart shows every month):\n\n"
        f"| category | revenue | peak month | revenue that month |\n|---|---:|---|---:|\n{rows}\n\n"
        f"**{found[0][0].capitalize()}** brought in the most, and each category peaks in its own season."
    )


DATA_ANALYSIS: list[TurnItem] = [
    code_turn(EXPLORE, text="Let me look at the tables first."),
    analyse_turn,
    analysis_answer,
]

# -- sandbox tour --------------------------------------------------------------------------------------

PROBE = """\
import os

suspicious = sorted(k for k in os.environ if any(w in k.upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")))
print("environment variables that look like secrets:", suspicious or "none")
try:
    get_customer(42)
except Exception as e:
    print("get_customer(42) raised", type(e).__name__)
print("get_customer('c1') returned", get_customer("c1"))
print("x" * 100_000)
"""


def tour_answer(body: dict[str, Any]) -> Turn:
    output = last_output(body)
    secrets = re.search(r"look like secrets: (.*)", output)
    raised = re.search(r"get_customer\(42\) raised (\w+)", output)
    cut = re.search(r"truncated ([\d,]+) (chars|characters)", output)
    if not (secrets and raised and cut):
        raise AssertionError(f"unexpected probe output: {output[:500]!r}")
    return text_turn(
        "What I found:\n\n"
        f"- **API keys or tokens:** {secrets.group(1)}. The sandbox's environment does not contain them.\n"
        f"- **Wrong argument type:** `get_customer(42)` raised `{raised.group(1)}` before the tool ran; "
        "`get_customer('c1')` worked.\n"
        f"- **100,000 characters printed:** I received only the first part; {cut.group(1)} characters were cut."
    )


SANDBOX_TOUR: list[TurnItem] = [
    code_turn(PROBE, text="I'll try all three in one script."),
    tour_answer,
]

# -- workshop ------------------------------------------------------------------------------------------

BEST_RATED = """\
best = []
for book in list_books():
    reviews = get_reviews(book["id"])
    if len(reviews) >= 20:
        average = sum(r["stars"] for r in reviews) / len(reviews)
        best.append((average, len(reviews), book["title"], book["author"]))
best.sort(reverse=True)
for average, count, title, author in best[:3]:
    print(f"{average:.2f} stars from {count} reviews: {title} by {author}")
print("books with at least 20 reviews:", len(best))
"""


def workshop_code_answer(body: dict[str, Any]) -> Turn:
    lines = re.findall(r"^([\d.]+) stars from (\d+) reviews: (.+) by (.+)$", last_output(body), re.M)
    (stars, count, title, author), *rest = lines
    runners = "; ".join(f"{t} ({s})" for s, _, t, _ in rest)
    return text_turn(f"**{title}** by {author}: {stars} stars on average from {count} reviews. Next: {runners}.")


def workshop_direct_reviews(body: dict[str, Any]) -> Turn:
    books = json.loads(last_output(body))
    calls = [{"type": "tool_use", "name": "get_reviews", "input": {"book_id": b["id"]}} for b in books]
    return Turn([{"type": "text", "text": "I'll fetch the reviews of every book."}, *calls])


def workshop_direct_answer(body: dict[str, Any]) -> Turn:
    assistant = body["messages"][-2]["content"]
    asked = [b["input"]["book_id"] for b in assistant if b.get("type") == "tool_use"]
    reviews = [json.loads(r) for r in tool_results(body)]
    titles = {b["id"]: b["title"] for b in json.loads(tool_results({"messages": [body["messages"][-3]]})[0])}
    averages = [
        (sum(r["stars"] for r in rs) / len(rs), len(rs), titles[book_id])
        for book_id, rs in zip(asked, reviews, strict=True)
        if len(rs) >= 20
    ]
    stars, count, title = max(averages)
    return text_turn(f"**{title}**: {stars:.2f} stars on average from {count} reviews.")


CONGRATULATE = """\
best = None
for book in list_books():
    reviews = get_reviews(book["id"])
    if len(reviews) >= 20:
        average = sum(r["stars"] for r in reviews) / len(reviews)
        if best is None or average > best[0]:
            best = (average, book)
average, book = best
try:
    status = send_email(
        "authors@bookshop.example",
        f"Congratulations on {book['title']}",
        f"Dear {book['author']}, {book['title']} is our best-rated book: {average:.2f} stars on average.",
    )
    print("email:", status, "-", book["title"], "by", book["author"])
except ToolDenied as e:
    print("email not sent:", e)
"""

EVERY_AVERAGE = """\
for book in list_books():
    reviews = get_reviews(book["id"])
    print(f"{sum(r['stars'] for r in reviews) / len(reviews):.2f}  {book['title']}")
"""


def workshop_email_answer(body: dict[str, Any]) -> Turn:
    output = last_output(body)
    if "email not sent" in output:
        return text_turn(
            "I did not send the email: `send_email` needs your approval, and this notebook could not ask you "
            '(it runs without stdin). To allow it: `%config CodeAgent.approve = {"send_email": "allow"}`.'
        )
    title, author = re.search(r"^email: sent - (.+) by (.+)$", output, re.M).groups()  # type: ignore[union-attr]
    return text_turn(f"Sent the congratulations to authors@bookshop.example: **{title}** by {author}.")


WORKSHOP: list[TurnItem] = [
    code_turn(BEST_RATED, text="One script: average the stars of every book with at least 20 reviews."),
    workshop_code_answer,
    tool_turn("list_books", {}, text="First the list of books."),
    workshop_direct_reviews,
    workshop_direct_answer,
    code_turn(CONGRATULATE, text="Find the best-rated book, then send one email."),
    workshop_email_answer,
    code_turn(CONGRATULATE, text="Again, now that it is approved."),
    workshop_email_answer,
    code_turn(EVERY_AVERAGE),  # stopped by --max-tool-calls 5: no answer turn follows
]

NOTEBOOKS: dict[str, list[TurnItem]] = {
    "quickstart": QUICKSTART,
    "data_analysis": DATA_ANALYSIS,
    "sandbox_tour": SANDBOX_TOUR,
    "workshop": WORKSHOP,
}


def make(name: str, turns: list[TurnItem], log: Callable[[str], None] = print) -> None:
    """Record ``name``'s cassette from ``turns``, mark it scripted, replay it and save the executed notebook."""
    notebook, cassette_path = HERE / f"{name}.ipynb", HERE / f"{name}.cassette.json"
    cassette_path.unlink(missing_ok=True)
    with MessagesServer(turns) as server:
        env = kernel_env({"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "scripted-turns-not-a-key"})
        run_notebook(notebook, env=env)
        if server.errors or server.turns_left:
            raise SystemExit(f"{name}: scripted turns went wrong: {server.errors}, {server.turns_left} left over")
    cassette = Cassette.load(cassette_path)
    cassette.source = SCRIPTED
    cassette.save()
    executed, _ = run_notebook(notebook)  # offline: replays the cassette
    nbformat.validate(executed)
    views = [
        str(o["data"]["text/plain"])
        for cell in executed.cells
        for o in cell.get("outputs", [])
        if "— codeagent:" in str(o.get("data", {}).get("text/plain", ""))
    ]
    failed = [
        v
        for v in views
        if (v.startswith("[") and not v.startswith("[budget]")) or not v.rstrip().endswith("replayed from cassette")
    ]
    if not views or failed:
        raise SystemExit(f"{name}: the offline replay did not answer every question: {failed}")
    nbformat.write(executed, notebook)
    log(f"{name}: {len(cassette.turns)} turns recorded from scripted turns, replayed, outputs saved")
    if name == "quickstart":
        for path in (notebook, cassette_path):
            shutil.copyfile(path, PACKAGE_EXAMPLES / path.name)
        log(f"{name}: copied to {PACKAGE_EXAMPLES.relative_to(HERE.parent)}/")


def main(argv: list[str]) -> None:
    names = argv or list(NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise SystemExit(f"unknown notebook(s): {', '.join(unknown)}; choose from {', '.join(NOTEBOOKS)}")
    for name in names:
        make(name, NOTEBOOKS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
