"""What differs per model backend, in one table: ``CodeAgent.model_profile = "auto" | "anthropic" | "local"``.

The loop reads these fields instead of branching on the backend. ``auto`` picks ``anthropic`` for Anthropic's
own API and ``local`` for any other base URL (llama.cpp, Ollama, vLLM, LM Studio, LiteLLM speak ``/v1/messages``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ANTHROPIC_HOSTS = ("api.anthropic.com",)
PROFILE_NAMES = ("auto", "anthropic", "local")


@dataclass(frozen=True)
class ModelProfile:
    """How to talk to one kind of backend."""

    name: str
    stream: bool  # stream the response (text appears live); llama.cpp ignores stop sequences when streaming
    cache_prompt: bool  # mark the system prompt with cache_control (Anthropic prompt caching)
    first_tool_choice: dict[str, Any] | None  # tool_choice of the first request (None: the server's default)
    stop_sequences: tuple[str, ...]  # end a reply before the model starts a second call
    extra_body: dict[str, Any] = field(default_factory=dict)  # fields the SDK has no argument for (temperature)
    needs_key: bool = True  # a missing API key is an error (else a placeholder key is sent)

    def request_options(self, step: int) -> dict[str, Any]:
        """Keyword arguments for ``client.messages.create``/``stream`` beyond model, messages, system, tools."""
        options: dict[str, Any] = {}
        if step == 1 and self.first_tool_choice is not None:
            options["tool_choice"] = dict(self.first_tool_choice)
        if self.stop_sequences:
            options["stop_sequences"] = list(self.stop_sequences)
        if self.extra_body:
            options["extra_body"] = dict(self.extra_body)
        return options


PROFILES: dict[str, ModelProfile] = {
    "anthropic": ModelProfile(
        name="anthropic",
        stream=True,
        cache_prompt=True,
        first_tool_choice=None,
        stop_sequences=(),
    ),
    # Seen with Qwen2.5-Coder-1.5B on llama.cpp: without a forced tool it writes the call as a ```json text
    # block; streaming drops stop sequences, so the call repeats until max_tokens; temperature 0 keeps
    # evaluations repeatable; the server has no prompt caching to mark.
    "local": ModelProfile(
        name="local",
        stream=False,
        cache_prompt=False,
        first_tool_choice={"type": "any"},
        stop_sequences=("<tool_call>",),
        extra_body={"temperature": 0.0},
        needs_key=False,
    ),
}


def is_anthropic_url(base_url: str | None) -> bool:
    """True for Anthropic's own API (also when no base URL is set at all)."""
    if not base_url:
        return True
    host = (urlsplit(base_url).hostname or "").lower()
    return host in ANTHROPIC_HOSTS or host.endswith(".anthropic.com")


def effective_base_url(base_url: str | None) -> str | None:
    """The base URL the SDK will use: the given one, else ``ANTHROPIC_BASE_URL``, else Anthropic's (None)."""
    return base_url or os.environ.get("ANTHROPIC_BASE_URL") or None


def choose_profile(name: str, base_url: str | None) -> ModelProfile:
    """The profile called ``name``; ``auto`` looks at the effective base URL."""
    if name == "auto":
        name = "anthropic" if is_anthropic_url(effective_base_url(base_url)) else "local"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"model_profile must be one of {', '.join(PROFILE_NAMES)}, not {name!r}") from None
