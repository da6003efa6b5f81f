"""The host's tool index and the search-mode prompt's list of sources."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from codeagent.agent.prompt import MAX_LISTED_SOURCES, source_lines
from codeagent.tools.search import ToolIndex


def tool(name: str, description: str, namespace: str = "shop", returns: str = "") -> Any:
    return SimpleNamespace(
        name=f"{namespace}.{name}",
        attr=name,
        namespace=namespace,
        server=namespace,
        description=description,
        input_schema={"type": "object", "properties": {"id": {"type": "string"}}},
        output_schema={"type": "object", "properties": {"id": {"type": "string"}}},
        returns=returns,
    )


CRUD = [
    tool(f"{verb}_order{'s' if verb == 'list' else ''}", f"{verb.capitalize()} an order.", returns="ListOrdersResult")
    for verb in ("list", "get", "create", "update", "delete")
] + [tool("upload_document", "Upload a file into a folder.", "drive"), tool("empty_trash", "Purge the bin.", "drive")]


def test_everyday_verbs_find_the_action_and_return_type_names_are_not_indexed() -> None:
    index = ToolIndex(CRUD, semantic=False)
    # every tool's return type is called ListOrdersResult: were it indexed, "list" would rank nothing
    assert index.search("show me every order", 1)[0].attr == "list_orders"
    assert index.search("get rid of an order", 1)[0].attr == "delete_order"
    assert index.search("set up an order", 1)[0].attr == "create_order"
    assert index.search("", 5) == [] and index.search("orders", 0) == []


def test_query_text_is_never_fts_syntax() -> None:
    index = ToolIndex(CRUD, semantic=False)
    for query in ['" OR 1=1 --', "NEAR(order", "order*", "description:order", "^^^"]:
        assert isinstance(index.search(query, 5), list)


def test_a_record_id_in_the_query_points_to_the_tools_that_take_one() -> None:
    tools = [
        tool("list_orders", "List orders, newest first; filter by status and page through them."),
        tool("get_order", "Get one order by its ID with all its details."),
        tool("count_orders", "Count orders matching a filter."),
    ]
    for semantic in (False, True):
        index = ToolIndex(tools, semantic=semantic)

        def place(query: str, index: ToolIndex = index) -> int:
            return [t.attr for t in index.search(query, 3)].index("get_order")

        assert place("orders status") == 2
        assert place("orders status ord_5512") == place("orders status ORD-77") == 1, semantic
        assert place("orders status 2024_q3 v2 17") == 2, semantic  # a year, a version, a number: no ids


def test_embeddings_find_a_paraphrase_that_shares_no_word() -> None:
    pytest.importorskip("wordllama")
    semantic = ToolIndex(CRUD)
    assert semantic.ranking.startswith("BM25 + embeddings")
    lexical = ToolIndex(CRUD, semantic=False)
    for query, wanted in [("throw away the garbage", "empty_trash"), ("send a pdf to storage", "upload_document")]:
        assert lexical.search(query, 1) == []
        assert semantic.search(query, 1)[0].attr == wanted


def test_word_matching_finds_the_one_word_said_differently() -> None:
    pytest.importorskip("wordllama")
    from codeagent.tools.embedding import WordMatch, embedder

    tools = [["delete", "order"], ["list", "orders"], ["create", "order"], ["update", "order"], []]
    match = WordMatch(embedder(), tools)
    # every tool has "order": only the verb tells them apart, and the query says it with another word
    for query, wanted in [(["erase", "order"], 0), (["modify", "order"], 3), (["enumerate", "orders"], 1)]:
        assert match.rank(query, 5)[0] == wanted, query
    assert match.rank(["order"], 5)[-1] == 4  # a tool without words comes last
    assert match.rank([], 5) == [] and WordMatch(embedder(), []).rank(["order"], 5) == []
    # a tool with a huge description keeps its first words (name, server) and loses the tail
    wordy = WordMatch(embedder(), [["delete", "order", *(f"word{i}" for i in range(2000))], ["list", "orders"]])
    assert wordy.rank(["erase", "order"], 2) == [0, 1]


def test_the_source_list_is_capped_largest_servers_first() -> None:
    tools = [tool(f"t{i}", "x", namespace=f"server{n}") for n in range(60) for i in range(n % 7 + 1)]
    tools += [SimpleNamespace(name="local_fn", namespace="", description="mine")]
    lines = source_lines(tools, name_chars=0).splitlines()
    assert len(lines) == MAX_LISTED_SOURCES + 1
    assert lines[0].startswith("- functions: 1 tool")
    counts = [int(line.split(": ")[1].split()[0]) for line in lines[1:-1]]
    assert counts == sorted(counts, reverse=True) and counts[0] == 7
    rest = len(tools) - 1 - sum(counts)
    assert (
        lines[-1]
        == f"- and {60 - MAX_LISTED_SOURCES + 1} more MCP servers with {rest} tools: find them with `search_tools`"
    )


def test_few_sources_keep_their_order_and_names() -> None:
    lines = source_lines(CRUD, name_chars=1_000).splitlines()
    assert [line.split("`")[1] for line in lines] == ["shop", "drive"]
    assert "list_orders, get_order" in lines[0]
