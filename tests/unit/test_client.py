"""Where the API key comes from, and that it is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeagent.agent.client import MissingAPIKey, find_api_key, make_client


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
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingAPIKey, match="Set ANTHROPIC_API_KEY"):
        make_client()


def test_client_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-very-secret-value"
    client = make_client(api_key=secret, base_url="http://127.0.0.1:9")
    assert secret not in repr(client) and secret not in str(vars(client).get("_custom_headers", ""))
