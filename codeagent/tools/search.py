"""Tool search on the host: a BM25 index (SQLite FTS5, standard library) over every tool of every source,
fused (weighted reciprocal rank fusion) with two rankings by a small embedding model when it is installed: whole
texts, and word by word (each query word's closest word of the tool).

Indexed per tool, in weighted columns: the name split on case and underscores, the source (MCP server) name,
the description, argument names and descriptions, output field names. Queries are reduced to plain words (so
nothing in a query is FTS syntax), everyday verbs gain the verb tool names use ("get rid of" → delete), and a
record's identifier in the query (``inv_204``) gains the word "id" (the tools that act on one record take its ID).
The embeddings (``codeagent.tools.embedding``) catch paraphrases that share no word with the tool.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from codeagent.tools.embedding import WordMatch, embedder

#: Column weights for FTS5's bm25(): name, source, description, arguments, outputs (chosen on the tuning
#: queries of benchmarks/tool_search.py, never on its held-out ones).
WEIGHTS = (3.0, 3.0, 1.5, 0.2, 0.2)
#: Reciprocal rank fusion: each ranking adds weight / (RRF_K + rank), cut at DEPTH; the weights of BM25, the
#: whole-text embeddings and the word matching (chosen on the tuning and validation queries, never on the
#: held-out or blind ones).
RRF_K = 10
DEPTH = 50
FUSION = (1.0, 0.75, 1.0)
_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+")
#: A record's identifier as people paste it: a short prefix, ``_`` or ``-``, digits (``inv_204``, ``emp-7``).
RECORD_ID = re.compile(r"\b[A-Za-z]{1,12}[_-]\d+[A-Za-z0-9]*\b")
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
    "set up": "create",
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


def name_as_query(name: str) -> str:
    """A tool name someone made up, as a search for the real ones: ``storely.delete_directory`` → its words."""
    return name.replace(".", " ").replace("_", " ")


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
    # Output field names only: a return type's name says nothing new, and one TypedDict shared by a
    # resource's tools (``ListInvoicesResult``) put "list" into every tool and made the word worthless.
    return (
        " ".join(words(name) + words(remote)),
        " ".join(words(source)),
        getattr(tool, "description", "") or "",
        " ".join(args),
        " ".join(outputs),
    )


def _content_words(text: str) -> list[str]:
    """The words word matching compares: no stopwords, no single letters."""
    return [w for w in words(text) if len(w) > 1 and w not in STOPWORDS]


def _match_words(fields: tuple[str, ...]) -> list[str]:
    name, source, description, _, _ = fields
    return _content_words(f"{name} {source} {description}")


def _embedding_text(tool: Any) -> str:
    name = getattr(tool, "attr", None) or tool.name
    source = getattr(tool, "server", "") or getattr(tool, "namespace", "")
    return f"{' '.join(words(name))} {source}. {getattr(tool, 'description', '') or ''}"


class ToolIndex:
    """Ranked search over tools; ``search(query, k)`` returns the best ``k`` tools, best first.

    ``semantic=False`` (or no embedding model installed) ranks by BM25 alone; ``everyday_verbs=False`` leaves
    out the hand-written :data:`VERB_SYNONYMS` (the benchmark measures what they add)."""

    def __init__(self, tools: Iterable[Any], semantic: bool = True, everyday_verbs: bool = True) -> None:
        self.tools = list(tools)
        self._verbs = VERB_SYNONYMS if everyday_verbs else {}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE tools USING fts5(name, source, description, arguments, outputs, "
            "tokenize='porter unicode61')"
        )
        fields = [_fields(t) for t in self.tools]
        self._db.executemany(
            "INSERT INTO tools(rowid, name, source, description, arguments, outputs) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, *f) for i, f in enumerate(fields)],
        )
        self._db.commit()
        self._model = embedder() if semantic and self.tools else None
        self._vectors = self._model.embed([_embedding_text(t) for t in self.tools], norm=True) if self._model else None
        self._word_match = WordMatch(self._model, [_match_words(f) for f in fields]) if self._model else None

    @property
    def ranking(self) -> str:
        if self._model is None:
            return "BM25"
        return "BM25 + embeddings of texts and words (reciprocal rank fusion)"

    def search(self, query: str, k: int = 5, weights: tuple[float, ...] = WEIGHTS) -> list[Any]:
        if k < 1:
            return []
        query = query[:2000]
        if RECORD_ID.search(query):
            query += " id"
        if self._word_match is None:  # no embedding model: BM25 alone
            return [self.tools[i] for i in self._bm25(query, k, weights)]
        depth = max(k, DEPTH)
        rankings = (
            self._bm25(query, depth, weights),
            self._nearest(query, depth),
            self._word_match.rank(_content_words(query), depth),
        )
        scores: dict[int, float] = {}
        for weight, ranked in zip(FUSION, rankings, strict=True):
            for rank, i in enumerate(ranked):
                scores[i] = scores.get(i, 0.0) + weight / (RRF_K + rank)
        best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
        return [self.tools[i] for i in best]

    def _bm25(self, query: str, limit: int, weights: tuple[float, ...]) -> list[int]:
        every = words(query)
        plain = [w for w in every if w not in STOPWORDS] or every
        pairs = [f"{a} {b}" for a, b in itertools.pairwise(every)]
        verbs = [self._verbs[w] for w in every + pairs if w in self._verbs]
        terms = list(dict.fromkeys(plain + verbs))
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms[:32])
        columns = ", ".join(str(float(w)) for w in weights)
        with self._lock:
            rows = self._db.execute(
                f"SELECT rowid FROM tools WHERE tools MATCH ? ORDER BY bm25(tools, {columns}) LIMIT ?",
                (match, int(limit)),
            ).fetchall()
        return [row[0] for row in rows]

    def _nearest(self, query: str, limit: int) -> list[int]:
        if not query.strip() or self._model is None or self._vectors is None:
            return []
        similarity = self._vectors @ self._model.embed([query], norm=True)[0]
        limit = min(limit, len(similarity))
        top = similarity.argpartition(-limit)[-limit:]
        return [int(i) for i in top[similarity[top].argsort()[::-1]]]

    def __len__(self) -> int:
        return len(self.tools)
