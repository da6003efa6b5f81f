"""The model profile table and how ``auto`` picks from the base URL."""

from __future__ import annotations

import pytest

from codeagent.agent.profiles import PROFILES, choose_profile, is_anthropic_url


@pytest.mark.parametrize(
    ("base_url", "env", "expected"),
    [
        (None, None, "anthropic"),
        ("https://api.anthropic.com", None, "anthropic"),
        ("https://api.anthropic.com/", "http://127.0.0.1:8080", "anthropic"),
        ("http://127.0.0.1:8080", None, "local"),
        ("http://localhost:11434", None, "local"),  # Ollama
        (None, "http://127.0.0.1:4000", "local"),  # ANTHROPIC_BASE_URL, e.g. a LiteLLM proxy
        ("https://anthropic.com.example.org", None, "local"),
    ],
)
def test_auto_picks_by_the_url_actually_used(
    monkeypatch: pytest.MonkeyPatch, base_url: str | None, env: str | None, expected: str
) -> None:
    if env is None:
        monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", env)
    assert choose_profile("auto", base_url).name == expected


def test_an_explicit_profile_wins_over_the_url() -> None:
    assert choose_profile("anthropic", "http://127.0.0.1:8080") is PROFILES["anthropic"]
    assert choose_profile("local", None) is PROFILES["local"]
    with pytest.raises(ValueError, match="model_profile must be one of auto, anthropic, local"):
        choose_profile("ollama", None)


def test_request_options_per_profile() -> None:
    local, anthropic = PROFILES["local"], PROFILES["anthropic"]
    assert local.request_options(1) == {
        "tool_choice": {"type": "any"},
        "stop_sequences": ["<tool_call>"],
        "extra_body": {"temperature": 0.0},
    }
    assert "tool_choice" not in local.request_options(2)  # forced only on the first request
    assert anthropic.request_options(1) == {} and anthropic.stream and anthropic.cache_prompt
    assert not local.stream and not local.cache_prompt


def test_anthropic_hosts() -> None:
    assert is_anthropic_url("https://api.anthropic.com/v1")
    assert not is_anthropic_url("http://127.0.0.1:9")
