"""Tool search on the host: a BM25 index (SQLite FTS5, standard library) over every tool of every source.

Indexed per tool, in weighted columns: the name split on case and underscores, the source (MCP server) name,
the description, argument names and descriptions, output field names. Queries are reduced to plain words (so
nothing in a query is FTS syntax), and everyday verbs gain the verb tool names use ("get rid of" → delete).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

#: Column weights for FTS5's bm25(): name, source, description, arguments, outputs (benchmarks/tool_search.py).
WEIGHTS = (3.0, 3.0, 1.5, 0.2, 0.2)
_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "get",
        "give",
        "has",
        "have",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "show",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "to",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
        "all",
        "some",
    }
)


#: Everyday verbs for what API tool names say with a handful of verbs (added to the query, never replacing it).
VERB_SYNONYMS = {
    "add": "create",
    "new": "create",
    "fresh": "create",
    "make": "create",
    "register": "create",
    "remove": "delete",
    "rid": "delete",
    "erase": "delete",
    "drop": "delete",
    "change": "update",
    "edit": "update",
    "modify": "update",
    "rename": "update",
    "show": "list",
    "browse": "list",
    "every": "list",
    "enumerate": "list",
    "find": "search",
    "lookup": "search",
    "keyword": "search",
    "mention": "search",
    "many": "count",
    "number": "count",
    "total": "count",
    "download": "export",
    "dump": "export",
    "spreadsheet": "export",
    "csv": "export",
    "backup": "export",
    "hide": "archive",
    "shelve": "archive",
    "audit": "history",
    "changed": "history",
    "trail": "history",
    "fetch": "get",
    "details": "get",
}


def words(text: str) -> list[str]:
    """``getInvoiceByID_v2`` → ``['get', 'invoice', 'by', 'id', 'v', '2']``."""
    return [w.lower() for w in _WORD.findall(text or "")]


def _fields(tool: Any) -> tuple[str, str, str, str, str]:
    name = getattr(tool, "attr", None) or tool.name
    remote = getattr(tool, "remote_name", "")
    source = getattr(tool, "server", "") or getattr(tool, "namespace", "")
    schema = getattr(tool, "input_schema", None) or {}
    args: list[str] = []
    for key, prop in (schema.get("properties") or {}).items():
        args.append(" ".join(words(str(key))))
        if isinstance(prop, dict) and isinstance(prop.get("description"), str):
            args.append(prop["description"][:300])
    output = getattr(tool, "output_schema", None) or {}
    outputs = [" ".join(words(str(k))) for k in (output.get("properties") or {})] if isinstance(output, dict) else []
    returns = getattr(tool, "returns", "")
    if returns:
        outputs.append(" ".join(words(returns)))
    return (
        " ".join(words(name) + words(remote)),
        " ".join(words(source)),
        getattr(tool, "description", "") or "",
        " ".join(args),
        " ".join(outputs),
    )


class ToolIndex:
    """Ranked search over tools; ``search(query, k)`` returns the best ``k`` tools, best first."""

    def __init__(self, tools: Iterable[Any]) -> None:
        self.tools = list(tools)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE tools USING fts5(name, source, description, arguments, outputs, "
            "tokenize='porter unicode61')"
        )
        self._db.executemany(
            "INSERT INTO tools(rowid, name, source, description, arguments, outputs) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, *_fields(t)) for i, t in enumerate(self.tools)],
        )
        self._db.commit()

    def search(self, query: str, k: int = 5) -> list[Any]:
        plain = [w for w in words(query) if w not in STOPWORDS] or words(query)
        terms = list(dict.fromkeys(plain + [VERB_SYNONYMS[w] for w in plain if w in VERB_SYNONYMS]))
        if not terms or k < 1:
            return []
        match = " OR ".join(f'"{t}"' for t in terms[:32])
        weights = ", ".join(str(w) for w in WEIGHTS)
        with self._lock:
            rows = self._db.execute(
                f"SELECT rowid FROM tools WHERE tools MATCH ? ORDER BY bm25(tools, {weights}) LIMIT ?",
                (match, int(k)),
            ).fetchall()
        return [self.tools[row[0]] for row in rows]

    def __len__(self) -> int:
        return len(self.tools)
