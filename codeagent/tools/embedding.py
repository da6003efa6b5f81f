"""Sentence embeddings for tool search, from WordLlama's model that ships inside its wheel (no download).

Optional: without the ``wordllama`` package (the ``codeagent[search]`` extra) :func:`embedder` returns None and
tool search is BM25 alone. The model (16 MB, 256 dimensions) is loaded once per process, on the first search.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

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
