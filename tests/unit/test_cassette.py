"""Record/replay: normalising requests, the cassette file, mismatch messages, and the real SDK end to end."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from codeagent.agent.cassette import (
    SCRIPTED,
    Cassette,
    CassetteError,
    CassetteMismatch,
    CassetteShelf,
    explain_difference,
    fingerprint,
    make_cassette_client,
    normalise_request,
)
from codeagent.agent.cassette_wire import message_from_sse, sse_body
from codeagent.agent.client import MissingAPIKey, describe_api_error
from codeagent.examples.runner import closed_port_url
from codeagent.testing.messages_server import ErrorTurn, MessagesServer, code_turn, text_turn

SYSTEM = [{"type": "text", "text": "You write Python.", "cache_control": {"type": "ephemeral"}}]
TOOLS = [{"name": "execute_python", "description": "Run code.", "input_schema": {"type": "object"}}]


def tool_result_request(tool_id: str, output: str, question: str = "How many?") -> dict[str, Any]:
    """The second request of a conversation: question, the model's tool_use, the script's output."""
    return {
        "model": "claude-test",
        "max_tokens": 100,
        "system": SYSTEM,
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": tool_id, "name": "execute_python", "input": {"code": "x"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": output}]},
        ],
    }


# -- normalising -------------------------------------------------------------------------------------------


def test_normalising_drops_cache_control_and_renumbers_tool_ids() -> None:
    request = normalise_request(tool_result_request("toolu_abc123", "3"))
    assert request["system"] == [{"type": "text", "text": "You write Python."}]
    assert request["messages"][1]["content"][0]["id"] == "toolu_1"
    assert request["messages"][2]["content"][0]["tool_use_id"] == "toolu_1"
    assert "max_tokens" not in request
    same = normalise_request(tool_result_request("toolu_zzz999", "3"))
    assert fingerprint(request) == fingerprint(same)


def test_volatile_bits_are_masked_but_real_output_is_not() -> None:
    first = "<object at 0x7f1280369000>\nCell In[3], line 2\n[figure 1: 547×413 PNG]\n/tmp/codeagent-ws-ab12cd34/x"
    second = "<object at 0x7fabcdef1234>\nCell In[9], line 2\n[figure 1: 550×420 PNG]\n/tmp/codeagent-ws-zz99yy88/x"
    a = normalise_request(tool_result_request("t1", first))
    b = normalise_request(tool_result_request("t1", second))
    assert fingerprint(a) == fingerprint(b)
    changed = normalise_request(tool_result_request("t1", second.replace("line 2", "line 3")))
    assert fingerprint(changed) != fingerprint(a)


def test_extra_volatile_patterns_mask_what_they_match() -> None:
    a = normalise_request(tool_result_request("t1", "took 0.52 s"), volatile=[r"\d+\.\d+ s"])
    b = normalise_request(tool_result_request("t1", "took 1.91 s"), volatile=[r"\d+\.\d+ s"])
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(normalise_request(tool_result_request("t1", "took 0.52 s"))) != fingerprint(
        normalise_request(tool_result_request("t1", "took 1.91 s"))
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda r: r["messages"][2]["content"][0].update(content="50 members"),
            "the tool_result differs from the recording: expected '51 members' got '50 members'",
        ),
        (lambda r: r["messages"][0].update(content="How few?"), "the user message differs from the recording"),
        (lambda r: r.update(model="claude-other"), "the model differs from the recording: expected 'claude-test'"),
        (lambda r: r.update(tools=[*TOOLS, {"name": "get_x"}]), "the tools offered differ from the recording: added"),
        (
            lambda r: r.update(system=[{"type": "text", "text": "You write Rust."}]),
            "the system prompt differs from the recording",
        ),
        (
            lambda r: r["messages"].append({"role": "user", "content": "and then?"}),
            "the request continues past the recording with a user message: 'and then?'",
        ),
    ],
    ids=["tool_result", "question", "model", "tools", "system", "longer"],
)
def test_a_mismatch_says_which_turn_and_how(tmp_path: Path, change: Any, expected: str) -> None:
    cassette = Cassette(tmp_path / "c.json")
    cassette.record(tool_result_request("t1", "51 members"), {"content": [{"type": "text", "text": "51"}]})
    request = tool_result_request("t1", "51 members")
    change(request)
    with pytest.raises(CassetteMismatch) as err:
        cassette.serve(request)
    assert str(err.value).startswith("turn 1")
    assert expected in str(err.value)
    assert "--record c.json" in str(err.value)


def test_the_closest_recorded_turn_is_named(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json")
    first = tool_result_request("t1", "members: 51")
    first["messages"] = first["messages"][:1]
    cassette.record(first, {"content": []})
    cassette.record(tool_result_request("t1", "members: 51"), {"content": []})
    cassette.serve(first)
    with pytest.raises(CassetteMismatch, match=r"^turn 2 \(question \"How many\?\"\): the tool_result differs"):
        cassette.serve(tool_result_request("t1", "members: 50"))


def test_explain_difference_of_a_changed_tool_definition() -> None:
    a = normalise_request(tool_result_request("t", "x"))
    b = normalise_request({**tool_result_request("t", "x"), "tools": [{**TOOLS[0], "description": "Run Python."}]})
    assert explain_difference(a, b).startswith("the definition of tool 'execute_python' differs from the recording")


# -- the file ----------------------------------------------------------------------------------------------


def test_the_file_is_readable_json_with_shared_parts_stored_once(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json", source=SCRIPTED, volatile=[r"\d+ ms"])
    for n in range(3):
        cassette.record(
            tool_result_request(f"t{n}", f"{n} rows in 5 ms"), {"content": [{"type": "text", "text": "ok"}]}
        )
    text = (tmp_path / "c.json").read_text()
    data = json.loads(text)
    assert data["format"] == "codeagent-cassette/1" and data["source"] == SCRIPTED
    assert list(data["systems"]) == ["system-1"] and list(data["toolsets"]) == ["tools-1"]
    assert text.count("You write Python.") == 1
    assert [t["request"]["system"] for t in data["turns"]] == ["system-1"] * 3
    loaded = Cassette.load(tmp_path / "c.json")
    assert loaded.source == SCRIPTED and len(loaded.turns) == 3
    assert loaded.serve(tool_result_request("other-id", "2 rows in 9 ms")) == {
        "content": [{"type": "text", "text": "ok"}]
    }


def test_loading_a_missing_or_foreign_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match=r"No cassette at .*missing\.json: record one first with --record"):
        Cassette.load(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"turns": []}')
    with pytest.raises(CassetteError, match="is not a codeagent cassette"):
        Cassette.load(tmp_path / "other.json")


def test_a_repeated_request_is_served_again(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json")
    cassette.record(tool_result_request("t", "1"), {"content": [{"type": "text", "text": "first"}]})
    cassette.record(tool_result_request("t", "1"), {"content": [{"type": "text", "text": "second"}]})
    served = [cassette.serve(tool_result_request("t", "1"))["content"][0]["text"] for _ in range(3)]
    assert served == ["first", "second", "second"]
    assert cassette.replayed == 3


# -- server-sent events ------------------------------------------------------------------------------------


def test_streamed_events_assemble_back_into_the_message() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [
            {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
            {"type": "text", "text": "I'll run it."},
            {"type": "tool_use", "id": "toolu_1", "name": "execute_python", "input": {"code": "print({'a': 1})"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 34},
    }
    assert message_from_sse(sse_body(message)) == message


# -- the real SDK against the local Messages API, then offline -----------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """No key anywhere, and the API base URL on a closed port."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    url = closed_port_url()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    yield url


def converse(client: anthropic.Anthropic, output: str = "51") -> tuple[Any, Any]:
    """Two turns like the agent loop: streamed first, then a plain create with the tool's result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "How many members?"}]
    with client.messages.stream(
        model="claude-test", max_tokens=100, system=SYSTEM, messages=messages, tools=TOOLS
    ) as s:
        first = s.get_final_message()
    tool_use = next(b for b in first.content if b.type == "tool_use")
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": output}]},
    ]
    second = client.messages.create(model="claude-test", max_tokens=100, system=SYSTEM, messages=messages, tools=TOOLS)
    return first, second


def test_record_then_replay_through_the_sdk_with_no_key_and_no_network(tmp_path: Path, offline: str) -> None:
    path = tmp_path / "c.json"
    with MessagesServer([code_turn("print(51)", text="Counting."), text_turn("There are 51.")]) as server:
        recorder = make_cassette_client("record", Cassette(path), api_key="test-key", base_url=server.url)
        recorded = converse(recorder)
        assert len(server.message_requests) == 2
    cassette = Cassette.load(path)
    assert len(cassette.turns) == 2
    replayer = make_cassette_client("replay", cassette)  # no key; ANTHROPIC_BASE_URL is a closed port
    replayed = converse(replayer)
    for a, b in zip(recorded, replayed, strict=True):
        assert a.model_dump() == b.model_dump()
    assert replayed[1].content[0].text == "There are 51."
    assert cassette.replayed == 2


def test_a_mismatch_through_the_sdk_is_described_in_one_line(tmp_path: Path, offline: str) -> None:
    path = tmp_path / "c.json"
    with MessagesServer([code_turn("print(51)"), text_turn("51")]) as server:
        converse(make_cassette_client("record", Cassette(path), api_key="k", base_url=server.url))
    replayer = make_cassette_client("replay", Cassette.load(path))
    with pytest.raises(anthropic.APIConnectionError) as err:
        converse(replayer, output="50")
    message = describe_api_error(err.value)
    assert message.startswith('turn 2 (question "How many members?"): the tool_result differs from the recording')
    assert "expected '51' got '50'" in message


def test_error_responses_are_not_recorded(tmp_path: Path, offline: str) -> None:
    path = tmp_path / "c.json"
    with MessagesServer([ErrorTurn(400, "invalid_request_error", "bad")]) as server:
        client = make_cassette_client("record", Cassette(path), api_key="k", base_url=server.url, max_retries=0)
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert not path.exists()


def test_replay_serves_only_messages(tmp_path: Path, offline: str) -> None:
    cassette = Cassette(tmp_path / "c.json")
    cassette.record({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, {"content": []})
    client = make_cassette_client("replay", cassette)
    with pytest.raises(anthropic.APIConnectionError) as err:
        client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi"}])
    assert describe_api_error(err.value) == (
        "replay serves POST /v1/messages only; this request was POST /v1/messages/count_tokens"
    )


def test_recording_without_a_key_says_how_to_run_offline(tmp_path: Path, offline: str, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_BASE_URL")  # recording from Anthropic's API needs a key (a local server would not)
    with pytest.raises(MissingAPIKey, match=r"to run offline, replay an existing cassette with --replay c\.json"):
        make_cassette_client("record", Cassette(tmp_path / "c.json"))


# -- choosing a cassette -----------------------------------------------------------------------------------


def test_auto_records_a_missing_cassette_then_keeps_recording_it(tmp_path: Path) -> None:
    shelf, path = CassetteShelf(), str(tmp_path / "c.json")
    mode, cassette = shelf.choose(path=path, mode="auto") or (None, None)
    assert mode == "record"
    cassette.record({"model": "m", "messages": []}, {"content": []})
    assert (tmp_path / "c.json").exists()
    again = shelf.choose(path=path, mode="auto")
    assert again is not None and again[0] == "record" and again[1] is cassette
    mode, replaying = CassetteShelf().choose(path=path, mode="auto") or (None, None)
    assert mode == "replay" and len(replaying.turns) == 1


def test_per_call_paths_win_and_bad_choices_are_refused(tmp_path: Path) -> None:
    shelf = CassetteShelf()
    Cassette(tmp_path / "a.json").record({"model": "m", "messages": []}, {"content": []})
    choice = shelf.choose(replay=str(tmp_path / "a.json"), path=str(tmp_path / "b.json"), mode="record")
    assert choice is not None and choice[0] == "replay" and choice[1].path == tmp_path / "a.json"
    assert shelf.choose(path=str(tmp_path / "a.json"), mode="off") is None
    assert shelf.choose(path="", mode="replay") is None
    with pytest.raises(CassetteError, match="must be one of auto, record, replay, off"):
        shelf.choose(path="x.json", mode="sometimes")
    with pytest.raises(CassetteError, match="not both"):
        shelf.choose(record="a.json", replay="a.json")


def test_a_replayed_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    Cassette(path).record({"model": "m", "messages": []}, {"content": []})
    shelf = CassetteShelf()
    first = shelf.replaying(path)
    assert shelf.replaying(path) is first
    rerecorded = Cassette(path, source=SCRIPTED)
    for _ in range(2):
        rerecorded.record({"model": "m", "messages": []}, {"content": []})
    later = first_mtime = path.stat().st_mtime + 5
    os.utime(path, (first_mtime, later))
    reread = shelf.replaying(path)
    assert reread is not first and len(reread.turns) == 2 and reread.source == SCRIPTED
