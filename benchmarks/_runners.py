"""Run one task both ways through the real anthropic SDK against the local Messages API server, and count.

*Direct*: the tools are ordinary Anthropic tools; a plain client loop sends each ``tool_result`` (the JSON of the
return value, uncapped, as a direct tool-calling harness sends it) back into the conversation. *codeagent*:
the real :class:`codeagent.agent.loop.Agent` with a real :class:`SandboxKernel`. Input tokens are counted
from the request bodies the server received.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from benchmarks._tasks import BenchTask
from codeagent.agent.client import describe_api_error
from codeagent.agent.loop import Agent, AgentSettings
from codeagent.agent.prompt import direct_tool_definitions
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.testing.messages_server import (
    MessagesServer,
    Turn,
    code_turn,
    estimate_tokens,
    last_tool_result,
    model_visible_parts,
    text_turn,
)
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import Tool, ToolRegistry

MODEL = AgentSettings().model  # the model codeagent uses by default
MAX_TOKENS = 1024
OFFLINE_METHOD = "offline estimate: 4 characters per token of the compact JSON of system + messages + tools"
LIVE_METHOD = "Anthropic token counting API (messages.count_tokens) on each recorded request"

Counter = Callable[[Sequence[dict[str, Any]]], list[int]]


@dataclass
class RunRecord:
    """One approach on one task: tokens per request as sent, turns, data volumes, the answer."""

    task: str
    approach: str  # "direct" or "codeagent"
    request_tokens: list[int]
    answer: str
    tool_calls: int
    tool_data_chars: int  # characters of JSON the tools returned
    model_saw_chars: int  # characters of tool results that entered the model's context
    duration_s: float
    estimated_tokens: list[int] = field(default_factory=list)  # offline estimate of each request, always
    usage_input_tokens: list[int] = field(default_factory=list)  # usage.input_tokens of each response

    @property
    def input_tokens(self) -> int:
        return sum(self.request_tokens)

    @property
    def turns(self) -> int:
        return len(self.request_tokens)

    @property
    def largest_request(self) -> int:
        return max(self.request_tokens, default=0)


def offline_counts(bodies: Sequence[dict[str, Any]]) -> list[int]:
    """Estimated input tokens of each request body (the same estimate the server puts in ``usage``)."""
    return [estimate_tokens(model_visible_parts(body)) for body in bodies]


def api_counter(client: anthropic.Anthropic, model: str) -> Counter:
    """Count each recorded request with the token counting endpoint (``client.messages.count_tokens``)."""

    def count(bodies: Sequence[dict[str, Any]]) -> list[int]:
        counts = []
        for i, body in enumerate(bodies, 1):
            parts = model_visible_parts(body)
            try:
                counted = client.messages.count_tokens(model=model, **parts)  # type: ignore[arg-type]
            except anthropic.APIError as e:
                raise RuntimeError(
                    f"token counting failed for request {i} of {len(bodies)} (about "
                    f"{estimate_tokens(parts):,} tokens by the offline estimate): {describe_api_error(e)} "
                    "Leave the largest task out with e.g. --members 10,100."
                ) from None
            counts.append(counted.input_tokens)
        return counts

    return count


def count_requests(bodies: Sequence[dict[str, Any]], counter: Counter) -> tuple[list[int], list[int]]:
    """``(counts by counter, offline estimates)`` of the recorded request bodies."""
    estimated = offline_counts(bodies)
    return (estimated if counter is offline_counts else counter(bodies)), estimated


def _client(server: MessagesServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="offline-benchmark", max_retries=0, timeout=300)


def direct_definitions(tools: list[Tool]) -> list[dict[str, Any]]:
    """The tools as ordinary Anthropic tools, exactly as codeagent offers its ``mode="direct"`` tools."""
    return direct_tool_definitions([dataclasses.replace(t, mode="direct") for t in tools])


def _listed_definitions(tools: list[Any]) -> list[dict[str, Any]]:
    """MCP tools as an MCP client offers them directly: the server's own name, description and input schema."""
    return [{"name": t.remote_name, "description": t.description, "input_schema": t.input_schema} for t in tools]


def run_direct(task: BenchTask, counter: Counter = offline_counts, max_turns: int = 5_000) -> RunRecord:
    """Direct tool calling: one model request per tool call, every result entering the conversation."""
    registry = task.registry or _registry(task.tools)
    dispatcher = ToolDispatcher(registry)
    names = task.direct_names or {}
    definitions = _listed_definitions(task.tools) if names else direct_definitions(task.tools)
    started = time.perf_counter()
    with MessagesServer([task.direct_model] * max_turns) as server:
        client = _client(server)
        messages: list[dict[str, Any]] = [{"role": "user", "content": task.question}]
        usage: list[int] = []
        calls = data_chars = 0
        for _ in range(max_turns):
            message = client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=messages, tools=definitions)
            usage.append(message.usage.input_tokens)
            uses = [b for b in message.content if b.type == "tool_use"]
            if message.stop_reason != "tool_use" or not uses:
                break
            messages.append({"role": "assistant", "content": [_block_param(b) for b in message.content]})
            results = []
            for block in uses:
                reply = dispatcher.call(block.id, names.get(block.name, block.name), block.input)
                calls += 1
                content = reply.text if reply.ok else reply.error_text
                data_chars += len(content) if reply.ok else 0
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": block.id,
                        "content": content,
                        **({} if reply.ok else {"is_error": True}),
                    }
                )
            messages.append({"role": "user", "content": results})
        else:
            raise RuntimeError(f"{task.name}: the direct model did not answer within {max_turns} turns")
        bodies = server.message_requests
        _check_server(server)
        counted, estimated = count_requests(bodies, counter)
        answer = "".join(b.text for b in message.content if b.type == "text")
    return RunRecord(
        task=task.name,
        approach="direct",
        request_tokens=counted,
        estimated_tokens=estimated,
        answer=answer,
        tool_calls=calls,
        tool_data_chars=data_chars,
        model_saw_chars=_tool_result_chars(bodies[-1]),
        duration_s=time.perf_counter() - started,
        usage_input_tokens=usage,
    )


def run_codeagent(task: BenchTask, sandbox: SandboxKernel, counter: Counter = offline_counts) -> RunRecord:
    """codeagent: one script that does the whole task in the sandbox, then an answer from what it printed."""

    def answer(body: dict[str, Any]) -> Turn:
        return text_turn(task.answer_from_output(last_tool_result(body)))

    started = time.perf_counter()
    with MessagesServer([code_turn(task.script), answer]) as server:
        registry = task.registry or _registry(task.tools)
        agent = Agent(_client(server), sandbox, registry, AgentSettings(model=MODEL, max_steps=4))
        result = agent.run(task.question)
        bodies = server.message_requests
        _check_server(server)
        counted, estimated = count_requests(bodies, counter)
    if result.status != "done":
        raise RuntimeError(f"{task.name}: codeagent ended {result.status}: {result.error}")
    failed = [s for s in result.scripts if s.status != "ok"]
    if failed:
        raise RuntimeError(f"{task.name}: the script failed:\n{failed[0].output}")
    return RunRecord(
        task=task.name,
        approach="codeagent",
        request_tokens=counted,
        estimated_tokens=estimated,
        answer=result.answer,
        tool_calls=len(result.tool_calls),
        tool_data_chars=result.tool_result_chars,
        model_saw_chars=_tool_result_chars(bodies[-1]),
        duration_s=time.perf_counter() - started,
        usage_input_tokens=[s.input_tokens for s in result.steps],
    )


def _block_param(block: Any) -> dict[str, Any]:
    """An assistant content block as it is sent back (text or tool_use; the scripted model uses no other)."""
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def _registry(tools: list[Tool]) -> ToolRegistry:
    registry = ToolRegistry()
    for t in tools:
        registry.add(dataclasses.replace(t, mode="code"))
    return registry


def _check_server(server: MessagesServer) -> None:
    if server.errors:
        raise RuntimeError(f"the scripted model failed: {server.errors[0]}")


def _tool_result_chars(body: dict[str, Any]) -> int:
    """Characters of tool_result content in a request: the tool data that reached the model's context."""
    total = 0
    for message in body.get("messages", []):
        if isinstance(message.get("content"), list):
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    content = block.get("content", "")
                    total += len(content) if isinstance(content, str) else sum(len(b.get("text", "")) for b in content)
    return total


# -- what the model is shown before any work: tool definitions ------------------------------------------------


@dataclass
class DefinitionRecord:
    """Tokens of the tool definitions (and instructions) in the first request, for one toolbox size."""

    tools: int
    direct_tokens: int  # tools: the JSON schemas
    codeagent_tokens: int  # system prompt (instructions + stubs) + the execute_python tool
    stub_tokens: int  # the stubs alone, as they appear in the system prompt


def _definition_parts(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model_visible_parts(body).items() if k != "messages"}


def measure_definitions(
    tools: list[Tool], sandbox: SandboxKernel, counter: Counter = offline_counts
) -> DefinitionRecord:
    """Send one request each way with ``tools`` and count what the model was shown besides the messages."""
    from codeagent.agent.prompt import tool_stubs

    question = "Which tools can you use?"
    with MessagesServer([text_turn("These.")]) as server:
        _client(server).messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": question}],
            tools=direct_definitions(tools),
        )
        direct_body = server.message_requests[0]
    with MessagesServer([text_turn("These.")]) as server:
        Agent(_client(server), sandbox, _registry(tools), AgentSettings(model=MODEL)).run(question)
        codeagent_body = server.message_requests[0]
    bodies = [_definition_parts(direct_body), _definition_parts(codeagent_body), {"system": tool_stubs(tools)}]
    direct, codeagent, stubs = _definitions_count(bodies, counter)
    return DefinitionRecord(tools=len(tools), direct_tokens=direct, codeagent_tokens=codeagent, stub_tokens=stubs)


def _definitions_count(bodies: list[dict[str, Any]], counter: Counter) -> list[int]:
    """Count definition-only bodies; the token counting API needs a message, so subtract one alone."""
    if counter is offline_counts:
        return offline_counts(bodies)
    probe = [{"role": "user", "content": "."}]
    base = counter([{"messages": probe}])[0]
    return [n - base for n in counter([{**b, "messages": probe} for b in bodies])]
