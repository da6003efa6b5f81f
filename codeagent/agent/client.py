"""The Anthropic client: where the key comes from, and API errors as one actionable line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anthropic

from codeagent.agent.profiles import effective_base_url, is_anthropic_url

KEY_VARIABLE = "ANTHROPIC_API_KEY"
#: Sent to servers that are not Anthropic's when no key is set (local servers take any key, or none).
PLACEHOLDER_KEY = "codeagent-no-key"


class MissingAPIKey(RuntimeError):
    """No API key was found. The message says how to set one."""


def find_api_key(search_dirs: list[Path] | None = None) -> str | None:
    """The key from ``ANTHROPIC_API_KEY``, else from the nearest ``.env`` file in the working directory or above
    (read with python-dotenv: ``KEY=value``, ``export KEY=value``, quotes, comments; nothing is executed)."""
    key = os.environ.get(KEY_VARIABLE, "").strip()
    if key:
        return key
    for directory in search_dirs or [Path.cwd(), *Path.cwd().parents]:
        env_file = directory / ".env"
        if env_file.is_file():
            value = _read_dotenv_key(env_file)
            if value:
                return value
    return None


def _read_dotenv_key(path: Path) -> str | None:
    from dotenv import dotenv_values

    try:
        # interpolate=False: a key is taken as written, never expanded from other variables
        value = dotenv_values(path, interpolate=False, encoding="utf-8").get(KEY_VARIABLE)
    except (OSError, UnicodeDecodeError):
        return None
    return value.strip() or None if value else None


class ClientCache:
    """One ``anthropic.Anthropic`` per (key, settings), reused across calls: building one costs ~20 ms, almost
    all of it loading the CA certificates into a new SSL context."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], anthropic.Anthropic] = {}

    def get(self, **options: Any) -> anthropic.Anthropic:
        key = find_api_key()
        base_url = options.get("base_url") or os.environ.get("ANTHROPIC_BASE_URL") or None
        ident = (key, base_url, *sorted((k, repr(v)) for k, v in options.items() if k != "base_url"))
        client = self._clients.get(ident)
        if client is None:
            client = make_client(api_key=key, **options)
            self._clients.clear()  # one live setting at a time is the common case; don't keep stale pools open
            self._clients[ident] = client
        return client


def make_client(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 600.0,
    max_retries: int = 2,
    transport: Any = None,
) -> anthropic.Anthropic:
    """A real ``anthropic.Anthropic`` client, or MissingAPIKey with a message saying what to do.

    A server that is not Anthropic's (``base_url`` or ``ANTHROPIC_BASE_URL``) needs no key: a placeholder is sent.
    ``transport`` replaces the SDK's HTTP transport (record/replay: ``codeagent.agent.cassette``).
    """
    base_url = effective_base_url(base_url)
    key = api_key or find_api_key() or (None if is_anthropic_url(base_url) else PLACEHOLDER_KEY)
    if not key:
        raise MissingAPIKey(
            "No Anthropic API key found. Set ANTHROPIC_API_KEY in the notebook's environment "
            "(or put ANTHROPIC_API_KEY=... in a .env file next to the notebook), then run the cell again. "
            "A local server (--base-url http://127.0.0.1:8080) needs no key."
        )
    return anthropic.Anthropic(
        api_key=key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        http_client=anthropic.DefaultHttpxClient(transport=transport) if transport is not None else None,
    )


def describe_api_error(error: Exception) -> str:
    """One line saying what went wrong with the API and what to do (the key is never included)."""
    from codeagent.agent.cassette import CassetteError

    if isinstance(error.__cause__, CassetteError):
        return str(error.__cause__)
    status = getattr(error, "status_code", None)
    detail = _server_message(error)
    if isinstance(error, anthropic.AuthenticationError):
        return "The API key was refused (401). Check ANTHROPIC_API_KEY."
    if isinstance(error, anthropic.PermissionDeniedError):
        return f"This key may not use that model or feature (403){detail}."
    if isinstance(error, anthropic.NotFoundError):
        return f"Model or endpoint not found (404){detail}. Check --model / CodeAgent.model and --base-url."
    if isinstance(error, anthropic.RateLimitError):
        return f"Rate limited (429) after retries{detail}. Wait a minute and run the cell again."
    if isinstance(error, anthropic.APITimeoutError):
        return "The API did not answer in time (timeout) after retries. Try again, or raise CodeAgent.timeout."
    if isinstance(error, anthropic.APIConnectionError):
        return (
            f"Could not connect to the API{_url_tried(error)} (connection refused or no network). Check your "
            "connection and --base-url, or run offline with --replay."
        )
    if status == 529:
        return f"The API is overloaded (529) after retries{detail}. Try again shortly."
    if isinstance(error, anthropic.BadRequestError):
        return f"The API rejected the request (400){detail}."
    if isinstance(error, anthropic.APIStatusError):
        return f"The API failed ({status}) after retries{detail}. Try again shortly."
    return f"{type(error).__name__}: {error}"


def _url_tried(error: Exception) -> str:
    """`` at <url>`` of the request that failed (no query string: it could carry a token)."""
    try:
        url = error.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""
    return f" at {url.copy_with(query=None, fragment=None)}"


def _server_message(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        message = (body.get("error") or {}).get("message") if isinstance(body.get("error"), dict) else None
        if message:
            return f": {str(message)[:200]}"
    return ""
