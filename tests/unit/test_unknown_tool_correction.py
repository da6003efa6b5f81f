"""The correction for a call to a tool that does not exist names a few tools, never all of them."""

from __future__ import annotations

from codeagent.agent.actions import MAX_NAMED_TOOLS, unknown_tool_correction

HOW = "There is no tool named 'nope'. Run Python with the `execute_python` tool; inside a script you can call"


def test_few_tools_are_all_named() -> None:
    assert unknown_tool_correction("nope", ["b", "a"]) == f"{HOW} these functions: a, b."
    assert unknown_tool_correction("nope", []) == f"{HOW} these functions: (none)."


def test_many_tools_without_an_index_name_the_first_and_count_the_rest() -> None:
    names = [f"tool_{i:03}" for i in range(1000)]
    text = unknown_tool_correction("nope", names)
    assert text.endswith(f"{', '.join(names[:MAX_NAMED_TOOLS])} and {1000 - MAX_NAMED_TOOLS} more.")


def test_many_tools_with_an_index_name_the_closest_and_point_to_search() -> None:
    names = [f"tool_{i:03}" for i in range(1000)]
    text = unknown_tool_correction("nope", names, lambda name, k: ["tool_007", "tool_070"])
    assert text.endswith("tool_007, tool_070 (the closest of 1000; `search_tools(query)` finds others).")
    long = unknown_tool_correction("x" * 5000, names, lambda name, k: names[:50])
    assert len(long) < 400 and long.count(", ") == MAX_NAMED_TOOLS - 1 + 0  # a long guess is cut, ten names
