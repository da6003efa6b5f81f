"""Embeddings for tool search, from WordLlama's model that ships inside its wheel (no download): whole texts
(:func:`embedder`) and word by word (:class:`WordMatch`).

Optional: without the ``wordllama`` package (the ``codeagent[search]`` extra) :func:`embedder` returns None and
tool search is BM25 alone. The model (16 MB, 256 dimensions) is loaded once per process, on the first search.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: At most this many words of a query are matched (each costs one pass over the index's words), and at most
#: this many distinct words of a tool (its first: name and server come before the description).
MAX_QUERY_WORDS = 24
MAX_TOOL_WORDS = 96

_lock = threading.Lock()
_loaded: list[Any] = []  # [] not tried yet; [None] not available; [model] loaded


def embedder() -> Any | None:
    """The shared WordLlama model (``.embed(texts, norm=True)`` → an array of unit rows), or None."""
    with _lock:
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _load() -> Any | None:
    try:
        import wordllama  # type: ignore[import-untyped]
        from safetensors import safe_open
    except ImportError:
        return None
    # The files the wheel ships, read directly: WordLlama.load() looks for the tokenizer in a folder the wheel
    # does not have and would then try to download it.
    root = Path(wordllama.__file__).parent
    weights = root / "weights" / "l2_supercat_256.safetensors"
    tokenizer = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
    if not (weights.is_file() and tokenizer.is_file()):
        return None
    with safe_open(str(weights), framework="np", device="cpu") as f:
        table = f.get_tensor("embedding.weight")
    return wordllama.WordLlamaInference(table, wordllama.WordLlama.load_tokenizer(tokenizer))


class WordMatch:
    """Soft word matching: each query word's best cosine similarity to any word of a tool, averaged over the
    query's words. It catches one word said differently ("erase" and "delete") where one averaged sentence
    vector blurs it among the others; ``rank`` returns tool positions, best first."""

    def __init__(self, model: Any, tool_words: Sequence[Sequence[str]]) -> None:
        self._model = model
        tool_words = [list(dict.fromkeys(words))[:MAX_TOOL_WORDS] for words in tool_words]
        vocabulary = sorted({w for words in tool_words for w in words})
        position = {w: i for i, w in enumerate(vocabulary)}
        # a word of no token would be a zero vector (NaN once normalised): it then matches nothing
        self._vectors = (
            np.nan_to_num(model.embed(vocabulary, norm=True)) if vocabulary else np.zeros((0, 1), np.float32)
        )
        width = max((len(words) for words in tool_words), default=0) or 1
        # one row of word positions per tool, padded with a position past the vocabulary (similarity -1)
        self._words = np.full((len(tool_words), width), len(vocabulary), dtype=np.int64)
        for row, words in enumerate(tool_words):
            ids = sorted({position[w] for w in words})
            self._words[row, : len(ids)] = ids

    def rank(self, query_words: Sequence[str], limit: int) -> list[int]:
        query_words = list(query_words)[:MAX_QUERY_WORDS]
        if not query_words or not len(self._words):
            return []
        similarity = np.nan_to_num(self._model.embed(query_words, norm=True)) @ self._vectors.T
        score = np.zeros(len(self._words), np.float32)
        for row in similarity:
            padded = np.append(row, np.float32(-1.0))
            score += padded[self._words].max(axis=1)
        return [int(i) for i in np.argsort(-score, kind="stable")[:limit]]  # ties: the tool listed first
