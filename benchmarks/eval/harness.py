"""The evaluation's side inside the notebook kernel: register a task's tools, summarise a ``%codeagent`` result,
and run the same task as direct tool calling (a plain tool-calling loop with the same client, profile and tools).

The direct loop is as lenient as codeagent: it accepts tool calls written as JSON text (``actions``), and a model
that repeats the calls it just made ends with their results as the answer.
"""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks.eval import tools as eval_tools
from benchmarks.eval.tasks import TASKS_BY_NAME, Task
from codeagent.agent.actions import json_tool_calls
from codeagent.agent.client import describe_api_error, make_client
from codeagent.agent.profiles import choose_profile
from codeagent.agent.prompt import direct_tool_definitions
from codeagent.agent.trace import CodeAgentResult
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry, default_registry, make_tool

DIRECT_SYSTEM = (
    "You answer questions by calling the tools you are given. Call them as needed, then reply with the final "
    "answer in plain text."
)
DATA_NOTE = " (the `sales` table: get its rows with get_sales_rows)"


def prepare(name: str, user_ns: dict[str, Any]) -> Task:
    """Register the task's tools in the notebook (the magic's registry); put `sales` in the namespace if needed."""
    task = TASKS_BY_NAME[name]
    default_registry.clear()
    for tool_name in task.tools:
        default_registry.add(make_tool(getattr(eval_tools, tool_name)))
    if task.data:
        user_ns["sales"] = eval_tools.make_sales()
    return task


def summary(result: CodeAgentResult, task_name: str) -> dict[str, Any]:
    """What the report needs of a ``%codeagent`` result."""
    task = TASKS_BY_NAME[task_name]
    figures = sum(1 for s in result.scripts for d in s.displays if "image/png" in d.get("data", {}))
    solved = result.status == "done" and task.check(result.answer) and (figures > 0 or not task.chart)
    return {
        "solved": solved,
        "status": result.status,
        "error": result.error,
        "answer": result.answer[:2000],
        "answer_source": result.answer_source,
        "turns": result.usage.requests,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "wall_s": round(result.duration_s, 2),
        "scripts": len(result.scripts),
        "failed_scripts": sum(1 for s in result.scripts if s.status != "ok"),
        "tool_calls": len(result.tool_calls),
        "figures": figures,
        "read_as": [s.read_as or "answer" for s in result.steps],
    }


def direct(name: str, base_url: str | None, model: str, max_tokens: int, max_turns: int) -> dict[str, Any]:
    """Task ``name`` as direct tool calling: every tool result goes back into the conversation."""
    task = TASKS_BY_NAME[name]
    tool_names = task.tools + (("get_sales_rows",) if task.data else ())
    registry = ToolRegistry()
    for tool_name in tool_names:
        registry.add(make_tool(getattr(eval_tools, tool_name), mode="direct"))
    definitions = direct_tool_definitions(registry)
    profile = choose_profile("auto", base_url)
    client = make_client(base_url=base_url, max_retries=0, timeout=600)
    dispatcher = ToolDispatcher(registry)
    question = task.question.replace("the DataFrame `sales`", "the `sales` table" + DATA_NOTE)
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    record: dict[str, Any] = {"turns": 0, "input_tokens": 0, "output_tokens": 0, "tool_calls": 0}
    started = time.perf_counter()
    status, answer, error, last_calls, last_results = "max_steps", "", None, None, ""
    try:
        for turn in range(1, max_turns + 1):
            message = client.messages.create(
                model=model,
                max_tokens=max_tokens,
                system=DIRECT_SYSTEM,
                messages=messages,
                tools=definitions,
                **profile.request_options(turn),
            )
            record["turns"] += 1
            record["input_tokens"] += message.usage.input_tokens or 0
            record["output_tokens"] += message.usage.output_tokens or 0
            text = "".join(b.text for b in message.content if b.type == "text").strip()
            uses = [b for b in message.content if b.type == "tool_use"]
            calls = [(b.name, b.input) for b in uses] or json_tool_calls(text, tool_names)[0]
            if not calls:
                status, answer = "done", text
                break
            if calls == last_calls:  # the same calls again instead of an answer: their results are the answer
                status, answer = "done", last_results
                break
            assistant = [_block(b) for b in message.content if b.type != "text" or b.text.strip()]
            messages.append({"role": "assistant", "content": assistant or [{"type": "text", "text": "(empty)"}]})
            results = [_call(dispatcher, tool_name, args) for tool_name, args in calls]
            record["tool_calls"] += len(calls)
            if uses:
                messages.append(
                    {
                        "role": "user",
                        "content": [_tool_result(b.id, r, e) for b, (r, e) in zip(uses, results, strict=True)],
                    }
                )
            else:
                messages.append({"role": "user", "content": "\n".join(r for r, _ in results)})
            last_calls, last_results = calls, "\n".join(r for r, _ in results)
    except Exception as e:  # an API error ends the task; report it rather than crash the run
        status, error = "error", describe_api_error(e) if hasattr(e, "request") else f"{type(e).__name__}: {e}"
    solved = status == "done" and not task.chart and task.check(answer)
    record.update(
        solved=solved,
        status=status,
        error=error,
        answer=answer[:2000],
        wall_s=round(time.perf_counter() - started, 2),
    )
    return record


def _call(dispatcher: ToolDispatcher, name: str, args: Any) -> tuple[str, bool]:
    reply = dispatcher.call("direct", name, args if isinstance(args, dict) else {})
    return (reply.text, False) if reply.ok else (reply.error_text, True)


def _tool_result(tool_use_id: str, content: str, is_error: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    return {**block, "is_error": True} if is_error else block


def _block(block: Any) -> dict[str, Any]:
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def emit(record: dict[str, Any]) -> None:
    """Print one record for the driver to read from the kernel's stdout."""
    print("EVAL-RECORD " + json.dumps(record, default=str))
