"""The scripted Messages API server, exercised through the real anthropic SDK over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from codeagent.testing.messages_server import (
    DelayTurn,
    ErrorTurn,
    MessagesServer,
    Turn,
    code_turn,
    estimate_tokens,
    model_visible_parts,
    text_turn,
    tool_turn,
)

MODEL = "claude-test-model"
USER = [{"role": "user", "content": "hello"}]
SECRET_KEY = "sk-ant-secret-do-not-store-1234"


@pytest.fixture
def server() -> Iterator[MessagesServer]:
    with MessagesServer() as srv:
        yield srv


def client_for(srv: MessagesServer, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("api_key", "test-key")
    return anthropic.Anthropic(base_url=srv.url, **kwargs)


def test_estimate_tokens_is_four_characters_per_token() -> None:
    assert estimate_tokens({"a": "bcd"}) == 3  # '{"a":"bcd"}' is 11 characters
    assert estimate_tokens("") == 1  # '""'
    assert estimate_tokens({"t": "é" * 10}) == 5  # ensure_ascii=False: 18 characters
    assert model_visible_parts({"model": "m", "max_tokens": 5, "system": "s", "messages": []}) == {
        "system": "s",
        "messages": [],
    }


def test_streaming_text_turn(server: MessagesServer) -> None:
    text = "Hello from the scripted model, streamed in pieces."
    server.add_turns(text_turn(text))
    client = client_for(server)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        chunks = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(chunks) > 1
    assert "".join(chunks) == text
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.model == MODEL
    assert final.id.startswith("msg_")
    assert final.usage.output_tokens == estimate_tokens([{"type": "text", "text": text}])


def test_streaming_tool_use_turn_input_parses(server: MessagesServer) -> None:
    code = 'import math\nprint({"pi": math.pi, "items": [1, 2, 3]})'
    server.add_turns(code_turn(code, text="Let me run that."))
    client = client_for(server)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Let me run that."
    tool_use = final.content[1]
    assert tool_use.name == "execute_python"
    assert tool_use.input == {"code": code}
    assert tool_use.id.startswith("toolu_")
    assert final.stop_reason == "tool_use"


def test_stream_events_follow_the_protocol(server: MessagesServer) -> None:
    server.add_turns(tool_turn("lookup", {"q": "a fairly long query string"}, text="Looking up."))
    with client_for(server).messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        kinds = [event.type for event in stream]
    raw_kinds = [k for k in kinds if k not in ("text", "input_json", "content_block_stop")]
    assert raw_kinds[0] == "message_start"
    assert raw_kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == 2
    assert kinds.count("content_block_delta") >= 4  # text and partial_json both arrive in several chunks


def test_non_stream_create(server: MessagesServer) -> None:
    server.add_turns(tool_turn("search", {"query": "jupyter"}, text="Searching."), text_turn("Done."))
    client = client_for(server)
    first = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert first.type == "message"
    assert first.role == "assistant"
    assert first.stop_reason == "tool_use"
    assert first.content[1].type == "tool_use"
    assert first.content[1].input == {"query": "jupyter"}
    second = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert second.content[0].type == "text"
    assert second.content[0].text == "Done."
    assert second.stop_reason == "end_turn"
    assert server.turns_left == 0


def test_callable_turn_sees_previous_tool_result(server: MessagesServer) -> None:
    seen: list[dict[str, Any]] = []

    def react(body: dict[str, Any]) -> Turn:
        seen.append(body)
        last = body["messages"][-1]["content"][-1]
        assert last["type"] == "tool_result"
        return text_turn(f"The tool said: {last['content']}")

    first = Turn([{"type": "tool_use", "id": "toolu_fixed01", "name": "execute_python", "input": {"code": "1+1"}}])
    server.add_turns(first, react)
    client = client_for(server)
    reply = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert reply.content[0].id == "toolu_fixed01"
    messages: list[Any] = [
        *USER,
        {"role": "assistant", "content": [block.model_dump() for block in reply.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_fixed01", "content": "2"}],
        },
    ]
    with client.messages.stream(model=MODEL, max_tokens=100, messages=messages) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "The tool said: 2"
    assert len(seen) == 1
    assert seen[0]["messages"][-1]["content"][0]["tool_use_id"] == "toolu_fixed01"


def test_running_out_of_turns_is_a_clear_500(server: MessagesServer) -> None:
    server.add_turns(text_turn("only one"))
    client = client_for(server)
    client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert info.value.status_code == 500
    assert "no scripted turn left for request #2" in str(info.value)
    assert server.errors == ["no scripted turn left for request #2"]


def test_failing_callable_turn_is_reported(server: MessagesServer) -> None:
    def broken(body: dict[str, Any]) -> Turn:
        raise KeyError("tool_result")

    server.add_turns(broken)
    with pytest.raises(anthropic.InternalServerError, match="raised KeyError"):
        client_for(server).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert len(server.errors) == 1


@pytest.mark.parametrize(
    ("status", "error_type", "exc_type"),
    [
        (401, "authentication_error", anthropic.AuthenticationError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.OverloadedError),
        (500, "api_error", anthropic.InternalServerError),
    ],
)
def test_error_turns_raise_the_sdk_error(
    server: MessagesServer, status: int, error_type: str, exc_type: type[anthropic.APIStatusError]
) -> None:
    server.add_turns(ErrorTurn(status, error_type, f"scripted {error_type}", headers={"retry-after": "0"}))
    with pytest.raises(exc_type) as info:
        client_for(server).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "error"
    assert info.value.body["error"] == {"type": error_type, "message": f"scripted {error_type}"}
    assert info.value.response.headers["retry-after"] == "0"
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")


def test_retry_after_error_turn_then_success(server: MessagesServer) -> None:
    server.add_turns(ErrorTurn(429, "rate_limit_error", "slow down", {"retry-after": "0"}), text_turn("ok"))
    reply = client_for(server, max_retries=1).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert reply.content[0].text == "ok"
    assert len(server.message_requests) == 2


def test_requests_recorded_and_api_key_redacted(server: MessagesServer) -> None:
    server.add_turns(text_turn("a"), text_turn("b"), text_turn("c"))
    client = client_for(server, api_key=SECRET_KEY)
    client.messages.create(model=MODEL, max_tokens=7, system="be brief", messages=USER)
    with client.messages.stream(model=MODEL, max_tokens=8, messages=USER) as stream:
        stream.get_final_message()
    raw = httpx.post(
        f"{server.url}/v1/messages",
        json={"model": MODEL, "max_tokens": 1, "messages": USER},
        headers={"x-api-key": SECRET_KEY, "anthropic-version": "2023-06-01"},
    )
    assert raw.status_code == 200
    assert len(server.requests) == 3
    assert server.request_paths == ["/v1/messages"] * 3
    assert server.requests[0]["system"] == "be brief"
    assert server.requests[0]["max_tokens"] == 7
    assert server.requests[0]["messages"] == USER
    assert server.requests[1]["stream"] is True
    # The SDK sends the key as x-api-key or as a bearer token, depending on its version.
    for headers in server.request_headers[:2]:
        credentials = [headers[name] for name in ("x-api-key", "authorization") if name in headers]
        assert credentials == ["<redacted>"]
    assert server.request_headers[2]["x-api-key"] == "<redacted>"
    assert SECRET_KEY not in json.dumps(server.request_headers)
    assert SECRET_KEY not in repr(server)


def test_usage_input_tokens_match_the_estimate(server: MessagesServer) -> None:
    tools: list[Any] = [
        {
            "name": "execute_python",
            "description": "Run Python code in the notebook kernel.",
            "input_schema": {
                "type": "object",
                "properties": {"code": {"type": "string"}},
                "required": ["code"],
            },
        }
    ]
    server.add_turns(text_turn("first"), text_turn("second"))
    client = client_for(server)
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 50, "system": "You are terse.", "tools": tools}
    created = client.messages.create(messages=USER, **kwargs)
    with client.messages.stream(messages=[{"role": "user", "content": "longer " * 40}], **kwargs) as stream:
        streamed = stream.get_final_message()
    expected = [estimate_tokens(model_visible_parts(body)) for body in server.requests]
    assert expected[0] == estimate_tokens({"system": "You are terse.", "messages": USER, "tools": tools})
    assert created.usage.input_tokens == expected[0]
    assert streamed.usage.input_tokens == expected[1]
    assert expected[1] > expected[0]
    assert server.total_input_tokens == sum(expected)
    counted = client.messages.count_tokens(model=MODEL, messages=USER, system="You are terse.", tools=tools)
    assert counted.input_tokens == expected[0]
    assert server.turns_left == 0  # count_tokens does not consume a turn


def test_usage_override(server: MessagesServer) -> None:
    server.add_turns(Turn([{"type": "text", "text": "x"}], usage={"input_tokens": 1234, "output_tokens": 56}))
    with client_for(server).messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
        final = stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (1234, 56)


def test_unknown_path_is_a_404_in_error_shape(server: MessagesServer) -> None:
    response = httpx.post(f"{server.url}/v1/complete", json={"prompt": "hi"})
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert "/v1/complete" in body["error"]["message"]
    assert httpx.get(f"{server.url}/v1/models").status_code == 404


def test_delay_turn_triggers_client_timeout(server: MessagesServer) -> None:
    server.add_turns(DelayTurn(5.0, text_turn("too late")))
    client = client_for(server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert time.monotonic() - started < 3.0


def test_chunk_delay_spaces_out_events_and_stop_is_prompt() -> None:
    srv = MessagesServer([Turn([{"type": "text", "text": "slow stream of text"}], chunk_delay=0.05)]).start()
    try:
        started = time.monotonic()
        with client_for(srv).messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
            assert stream.get_final_message().content[0].text == "slow stream of text"
        assert time.monotonic() - started >= 0.05 * 6  # at least start, ping, 3 blocks events, delta, stop
        srv.add_turns(DelayTurn(30.0, text_turn("never")))
        client = client_for(srv, timeout=0.2)
        with pytest.raises(anthropic.APITimeoutError):
            client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    finally:
        stopped = time.monotonic()
        srv.stop()
    assert time.monotonic() - stopped < 5.0
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.url
