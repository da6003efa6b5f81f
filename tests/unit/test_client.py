"""Where the API key comes from, and that it is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeagent.agent.client import PLACEHOLDER_KEY, MissingAPIKey, describe_api_error, find_api_key, make_client


def test_key_from_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY=from-file\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert find_api_key([tmp_path]) == "from-env"


def test_key_from_dotenv_in_notebook_directory_or_above(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    (tmp_path / ".env").write_text("# keys\nOTHER=1\nexport ANTHROPIC_API_KEY='sk-ant-dotenv'\n")
    nested = tmp_path / "notebooks" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_api_key() == "sk-ant-dotenv"


def test_missing_key_message_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)  # Anthropic's API: a key is needed
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingAPIKey, match="Set ANTHROPIC_API_KEY"):
        make_client()


def test_client_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-very-secret-value"
    client = make_client(api_key=secret, base_url="http://127.0.0.1:9")
    assert secret not in repr(client) and secret not in str(vars(client).get("_custom_headers", ""))


def test_a_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A base URL that is not Anthropic's works without a key: a placeholder is sent, the request succeeds."""
    from codeagent.testing.messages_server import MessagesServer, text_turn

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with MessagesServer([text_turn("hi")]) as server:
        client = make_client(base_url=server.url, max_retries=0)
        reply = client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert reply.content[0].text == "hi"
        headers = server.request_headers[0]
        assert "<redacted>" in (headers.get("x-api-key"), headers.get("authorization"))  # a key was sent
    assert client.api_key == PLACEHOLDER_KEY


def test_anthropic_still_needs_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    for base_url in (None, "https://api.anthropic.com"):
        monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
        with pytest.raises(MissingAPIKey, match=r"A local server .* needs no key"):
            make_client(base_url=base_url)


def test_a_refused_connection_names_the_url_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    import anthropic

    client = make_client(base_url="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(anthropic.APIConnectionError) as err:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    message = describe_api_error(err.value)
    assert "Could not connect to the API at http://127.0.0.1:9/v1/messages" in message
