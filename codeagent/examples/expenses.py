"""The expense example: teams, members with budgets, and their expenses, generated deterministically."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MERCHANTS = ("Airline", "Hotel", "Taxi", "Restaurant", "Conference", "Books", "Cloud", "Coworking")


@dataclass
class ExpenseData:
    """Members of one team and their expenses per month."""

    team: str
    members: list[dict[str, Any]]
    expenses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def get_team_members(self, team: str) -> list[dict[str, Any]]:
        if team != self.team:
            raise ValueError(f"unknown team {team!r}")
        return [dict(m) for m in self.members]

    def get_expenses(self, member_id: str, month: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self.expenses.get((member_id, month), [])]

    def over_budget(self, month: str) -> dict[str, float]:
        """Ground truth: name → amount over budget, for members whose month total exceeds their budget."""
        out = {}
        for m in self.members:
            total = sum(e["amount"] for e in self.expenses.get((m["id"], month), []))
            if total > m["budget"]:
                out[m["name"]] = round(total - m["budget"], 2)
        return out


def make_expense_data(
    members: int = 50, per_member: int = 40, month: str = "2026-10", seed: int = 7, team: str = "platform"
) -> ExpenseData:
    """``members`` people, each with ``per_member`` expenses in ``month``; about a fifth go over budget."""
    rng = random.Random(seed)
    people = []
    expenses: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i in range(members):
        member_id = f"m{i:04d}"
        budget = float(rng.randrange(2_000, 6_000, 100))
        over = rng.random() < 0.2
        target = budget * (rng.uniform(1.02, 1.4) if over else rng.uniform(0.5, 0.97))
        amounts = [rng.random() for _ in range(per_member)]
        scale = target / sum(amounts)
        day = [rng.randrange(1, 29) for _ in range(per_member)]
        rows = [
            {
                "amount": round(a * scale, 2),
                "merchant": f"{rng.choice(MERCHANTS)} #{rng.randrange(10_000, 99_999)}",
                "date": f"{month}-{d:02d}",
            }
            for a, d in zip(amounts, day, strict=True)
        ]
        people.append({"id": member_id, "name": f"Member {i:04d}", "budget": budget})
        expenses[(member_id, month)] = rows
    return ExpenseData(team=team, members=people, expenses=expenses)


def expense_tools(data: ExpenseData) -> list[Callable[..., Any]]:
    """The example's two tools over ``data``, as plain functions ready for ``@tool`` / ``make_tool``."""

    def get_team_members(team: str) -> list[dict]:
        """Members of a team: [{"id": str, "name": str, "budget": float}]."""
        return data.get_team_members(team)

    def get_expenses(member_id: str, month: str) -> list[dict]:
        """Expenses of one member in a month (YYYY-MM): [{"amount": float, "merchant": str, "date": str}]."""
        return data.get_expenses(member_id, month)

    return [get_team_members, get_expenses]


def over_budget_script(team: str = "platform", month: str = "2026-10") -> str:
    """The one script a model would write for the question: prints only the members over budget."""
    return f"""\
members = get_team_members("{team}")
over = []
for m in members:
    total = sum(e["amount"] for e in get_expenses(m["id"], "{month}"))
    if total > m["budget"]:
        over.append((m["name"], round(total - m["budget"], 2)))
for name, amount in sorted(over):
    print(f"{{name}}: {{amount:.2f}}")
print("members checked:", len(members))
"""
