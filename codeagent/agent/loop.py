"""The model loop: ask, run the scripts it writes, hand back what they printed, until it answers."""

from __future__ import annotations

import json
import re
import time
from typing import Any, Protocol

import anthropic
from anthropic.types import (
    ContentBlockParam,
    Message,
    MessageParam,
    TextBlockParam,
    ToolResultBlockParam,
    ToolUnionParam,
    ToolUseBlock,
)
from pydantic import BaseModel, ConfigDict, Field

from codeagent.agent.actions import BAD_EXECUTE, Reply, read_reply
from codeagent.agent.budget import Budget
from codeagent.agent.client import describe_api_error
from codeagent.agent.profiles import PROFILES, ModelProfile
from codeagent.agent.prompt import (
    EXECUTE_PYTHON,
    EXECUTE_PYTHON_TOOL,
    approval_note,
    direct_tool_definitions,
    system_prompt,
    tool_limit_note,
)
from codeagent.agent.trace import CodeAgentResult, Listener, ModelStep, ScriptRun, TraceEvent
from codeagent.sandbox.host.manager import ExecutionResult
from codeagent.sandbox.host.output import cap_text
from codeagent.tools.approval import INTERRUPTED_NOTE, Approvals, Decision, script_denial_message
from codeagent.tools.dispatch import TRACE_VALUE_CHARS, ToolDispatcher, ToolGate
from codeagent.tools.records import ToolCallRecord
from codeagent.tools.registry import ToolRegistry
from codeagent.tools.toolbox import ToolBox


class Sandbox(Protocol):
    """What the loop needs of a sandbox (``codeagent.sandbox.host.manager.SandboxKernel``)."""

    layers: list[str]

    def set_tools(self, specs: list[dict[str, Any]]) -> None: ...

    def execute(self, code: str, handler: Any, *, on_output: Any = None, on_display: Any = None) -> ExecutionResult: ...


class AgentSettings(BaseModel):
    """How the model is asked. Configured through the ``CodeAgent`` traits of the same names."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("claude-sonnet-5-5", description="Anthropic model name.")
    max_tokens: int = Field(8192, ge=1, description="max_tokens of each model request.")
    max_steps: int = Field(10, ge=1, description="Model requests per call before stopping without an answer.")
    output_chars: int = Field(
        20_000, ge=200, description="Script output (and direct tool results) shown to the model, then truncated."
    )
    profile: ModelProfile = Field(PROFILES["anthropic"], description="How requests are shaped for the backend.")
    answer_from_output: bool = Field(False, description="The first clean script's output is the answer.")
    tool_prompt_tokens: int = Field(
        1_500, ge=0, description="Tokens of tool stubs the system prompt may hold; past it the model uses search_tools."
    )
    defer_direct_tools: bool = Field(
        True, description="Past that budget, direct tools use the API's defer_loading and its tool-search tool."
    )


class Agent:
    """Runs one prompt to an answer. Reports every step to ``listener`` as a :class:`TraceEvent`."""

    def __init__(
        self,
        client: anthropic.Anthropic,
        sandbox: Sandbox,
        registry: ToolRegistry | ToolBox,
        settings: AgentSettings | None = None,
        listener: Listener | None = None,
        *,
        approvals: Approvals | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.client = client
        self.sandbox = sandbox
        self.registry = registry
        self.settings = settings or AgentSettings()
        self.listener = listener
        self.approvals = approvals
        self.budget = budget
        if approvals is not None:
            approvals.on_asked = lambda question: self._emit("approval_asked", question)
        # No gate at all when nothing can be refused: the common tool call pays nothing for approvals.
        asks = approvals is not None and (
            bool(approvals.rules) or any(getattr(t, "approve", False) for t in registry)  # MCP tools: the same flag
        )
        limit = budget.tools if budget is not None and budget.tools.limit is not None else None
        self.gate = ToolGate(approvals if asks else None, limit) if asks or limit is not None else None
        self._request_size = 0

    def _emit(self, kind: Any, data: Any = None) -> None:
        if self.listener is not None:
            self.listener(TraceEvent(kind, data))

    def run(
        self,
        prompt: str,
        *,
        history: list[MessageParam] | None = None,
        data_section: str = "",
    ) -> CodeAgentResult:
        """Ask ``prompt`` (after ``history``) and loop until the model answers or the step limit."""
        s = self.settings
        result = CodeAgentResult(
            prompt=prompt,
            model=s.model,
            sandbox_layers=list(self.sandbox.layers),
            sandbox_warning=str(getattr(self.sandbox, "warning", "")),
        )
        started = time.perf_counter()
        tools = [
            t for t in self.registry if t.mode != "direct"
        ]  # a direct-only tool is no stub: the script cannot call it
        self.sandbox.set_tools([t.spec() for t in tools])
        notes = approval_note(tools, self.approvals) + tool_limit_note(self.budget.tools.limit if self.budget else None)
        prompt_text = system_prompt(tools, data_section, notes, s.tool_prompt_tokens)
        system: list[TextBlockParam] = [{"type": "text", "text": prompt_text}]
        if s.profile.cache_prompt:
            system[0]["cache_control"] = {"type": "ephemeral"}
        # deferred loading is an Anthropic API feature: only for the profile that speaks to it
        deferred_budget = s.tool_prompt_tokens if s.defer_direct_tools and s.profile.cache_prompt else None
        api_tools: list[ToolUnionParam] = [
            EXECUTE_PYTHON_TOOL,
            *direct_tool_definitions([t for t in self.registry if t.mode != "code"], deferred_budget),
        ]
        messages: list[MessageParam] = [*(history or []), {"role": "user", "content": prompt}]
        try:
            self._loop(result, system, api_tools, messages)
        except KeyboardInterrupt:
            result.status = "interrupted"
            result.error = "Interrupted by the user."
        except anthropic.APIError as e:
            result.status = "error"
            result.error = describe_api_error(e)
        result.duration_s = time.perf_counter() - started
        if result.status != "done" and result.error:
            self._emit("error", result.error)
        self._emit("done", result)
        return result

    def _loop(
        self,
        result: CodeAgentResult,
        system: list[TextBlockParam],
        api_tools: list[ToolUnionParam],
        messages: list[MessageParam],
    ) -> None:
        s = self.settings
        code_tools = {t.name for t in self.registry}
        direct_tools = {t.name for t in self.registry if t.mode == "direct"}
        corrected = False
        for step in range(1, s.max_steps + 1):
            max_tokens = self._room_for_request(result, system, api_tools, messages)
            if max_tokens is None:
                return
            message = self._ask(result, step, system, api_tools, messages, max_tokens)
            reply = read_reply(message.content, code_tools, direct_tools)
            if reply.correction and not corrected and step < s.max_steps:
                corrected = True  # one corrective turn; whatever comes next is the outcome
                result.steps[-1].read_as = "correction"
                self._emit("correction", reply.correction)
                messages.append({"role": "assistant", "content": _assistant_content(message)})
                messages.append({"role": "user", "content": reply.correction})
                continue
            if not reply.is_action:
                result.answer = reply.text
                result.status = "done"
                if reply.correction:
                    result.status = "error"
                    result.error = "The model replied with neither an answer nor a script, even after a correction."
                if message.stop_reason == "max_tokens" and max_tokens < s.max_tokens and self.budget is not None:
                    self._stop_for_budget(result, "the answer was cut short at the output the budget left room for")
                return
            if self._finish_on_repeat(result, reply):
                return
            if step == s.max_steps:
                break
            result.steps[-1].read_as = _read_as(reply)
            messages.append({"role": "assistant", "content": _assistant_content(message)})
            messages.append({"role": "user", "content": self._run_actions(result, step, message, reply)})
            if self.budget is not None and self.budget.check_tools():
                self._stop_for_budget(result)
                return
            ran = [run for run in result.scripts if run.step == step]
            if s.answer_from_output and ran and ran[-1].status == "ok":
                result.answer = ran[-1].output.strip()
                result.answer_source = "answer_from_output"
                result.status = "done"
                return
        result.answer = _text_of(message)
        result.status = "max_steps"
        result.error = (
            f"Stopped after {s.max_steps} model steps without a final answer. Raise the limit with "
            f"--max-steps, or ask a narrower question."
        )

    def _finish_on_repeat(self, result: CodeAgentResult, reply: Reply) -> bool:
        """A reply that only re-sends a script that already ran cleanly ends the call with that output."""
        if reply.tool_uses or not reply.scripts:
            return False
        earlier = {run.code.strip(): run for run in result.scripts if run.status == "ok"}
        runs = [earlier.get(script.code.strip()) for script in reply.scripts]
        last = runs[-1]
        if last is None or any(run is None for run in runs):
            return False
        result.status = "done"
        if reply.scripts[0].source == "fenced" and _prose_outside_code(reply.text):
            result.answer = reply.text  # an answer that shows the script it used
            return True
        result.steps[-1].read_as = "repeated script"
        result.answer = last.output.strip()
        result.answer_source = "repeated_script"
        return True

    def _run_actions(self, result: CodeAgentResult, step: int, message: Any, reply: Reply) -> Any:
        """Run the reply's scripts and direct calls; returns the content of the user turn that answers it."""
        if not reply.via_tool_use:  # a script written in the text: its output goes back as text
            script = reply.scripts[0]
            run = self._confirmed_run(result, step, script.code)
            heading = "Output of your script:" if run.status == "ok" else "Your script failed:"
            note = f"\n{script.note}" if script.note else ""
            return f"{heading}\n{run.output or '(nothing was printed)'}{note}"
        answers: dict[str, ToolResultBlockParam] = {}
        for script in reply.scripts:
            run = self._confirmed_run(result, step, script.code)
            content = run.output + (f"\n{script.note}" if script.note else "")
            for tool_use_id in script.tool_use_ids:
                answers[tool_use_id] = _tool_result(tool_use_id, content, run.status != "ok")
        for block in reply.tool_uses:
            answers[block.id] = self._run_tool(result, step, block)
        return [answers[b.id] for b in message.content if b.type == "tool_use"]

    def _room_for_request(
        self,
        result: CodeAgentResult,
        system: list[TextBlockParam],
        api_tools: list[ToolUnionParam],
        messages: list[MessageParam],
    ) -> int | None:
        """``max_tokens`` for the next request (lowered to what the budget leaves), or None: do not send it."""
        if self.budget is None:
            return self.settings.max_tokens
        self._request_size = size = _request_chars(system, api_tools, messages)
        max_tokens = self.budget.before_request(result.usage, size, self.settings.max_tokens)
        if max_tokens is None:
            self._stop_for_budget(result)
        return max_tokens

    def _stop_for_budget(self, result: CodeAgentResult, why: str | None = None) -> None:
        assert self.budget is not None
        if why is not None and self.budget.stopped_by is None:
            self.budget.stopped_by = "the US$ budget"
            self.budget.why = why
        result.status = "budget"
        result.stopped_by = self.budget.stopped_by
        result.error = self.budget.stop_message(result.usage)

    def _ask(
        self,
        result: CodeAgentResult,
        step: int,
        system: list[TextBlockParam],
        api_tools: list[ToolUnionParam],
        messages: list[MessageParam],
        max_tokens: int,
    ) -> Message:
        s = self.settings
        self._emit("model_started", step)
        started = time.perf_counter()
        request: dict[str, Any] = dict(
            model=s.model, max_tokens=max_tokens, system=system, messages=messages, tools=api_tools
        )
        request.update(s.profile.request_options(step))
        if s.profile.stream:
            with self.client.messages.stream(**request) as stream:
                for text in stream.text_stream:
                    self._emit("model_text", text)
                message = stream.get_final_message()
        else:
            message = self.client.messages.create(**request)
            if _text_of(message):
                self._emit("model_text", _text_of(message))
        result.usage.add(message.usage)
        if self.budget is not None:
            self.budget.after_request(message.usage, self._request_size)
        model_step = ModelStep(
            index=step,
            text=_text_of(message),
            stop_reason=message.stop_reason,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            duration_s=time.perf_counter() - started,
        )
        result.steps.append(model_step)
        self._emit("model_finished", model_step)
        return message

    def _run_tool(self, result: CodeAgentResult, step: int, block: ToolUseBlock) -> ToolResultBlockParam:
        """Answer one tool_use block (a direct tool, or one that cannot run) with a tool_result block."""
        if block.name == EXECUTE_PYTHON:
            return _tool_result(block.id, BAD_EXECUTE, True)
        tool = self.registry.get(block.name)
        if tool is None or tool.mode == "code":
            return _tool_result(block.id, f"There is no tool named {block.name!r}.", True)
        calls: list[ToolCallRecord] = []
        reply = ToolDispatcher(self.registry, calls.append, self.gate).call(block.id, block.name, block.input)
        for call in calls:
            result.direct_calls.append(call)
            self._emit("tool_call", call)
        if reply.ok:
            return _tool_result(block.id, cap_text(reply.text, self.settings.output_chars), False)
        return _tool_result(block.id, reply.error_text, True)

    def _confirmed_run(self, result: CodeAgentResult, step: int, code: str) -> ScriptRun:
        """Run ``code`` (after ``--confirm`` asked, if on); a declined script is recorded with the reason."""
        decision = self._confirm(result, step, code)
        if decision is not None and not decision.allowed:
            return result.scripts[-1]
        return self._run_script(result, step, code, approval=decision.note if decision else None)

    def _confirm(self, result: CodeAgentResult, step: int, code: str) -> Decision | None:
        """With ``--confirm``: ask before the script runs; a declined script is recorded, not run."""
        if self.approvals is None:
            return None
        try:
            decision = self.approvals.for_script(code)
        except KeyboardInterrupt:
            run = ScriptRun(step=step, code=code, status="interrupted", approval=INTERRUPTED_NOTE)
            result.scripts.append(run)
            self._emit("script_finished", run)
            raise
        if decision is not None and not decision.allowed:
            run = ScriptRun(step=step, code=code, status="denied", approval=decision.note)
            run.output = script_denial_message(decision)
            result.scripts.append(run)
            self._emit("script_finished", run)
        return decision

    def _run_script(self, result: CodeAgentResult, step: int, code: str, approval: str | None = None) -> ScriptRun:
        run = ScriptRun(step=step, code=code, approval=approval)
        result.scripts.append(run)
        self._emit("script_started", run)

        def on_call(call: ToolCallRecord) -> None:
            run.tool_calls.append(call)
            self._emit("tool_call", call)

        limit = getattr(getattr(self.sandbox, "policy", None), "trace_value_chars", TRACE_VALUE_CHARS)
        dispatcher = ToolDispatcher(self.registry, on_call, self.gate, trace_value_chars=limit)
        try:
            outcome = self.sandbox.execute(
                code,
                dispatcher,
                on_output=lambda text: self._emit("script_output", text),
                on_display=lambda bundle: self._emit("display", bundle),
            )
        except KeyboardInterrupt:
            dispatcher.report()
            run.status = "interrupted"
            self._emit("script_finished", run)
            raise
        dispatcher.report()  # calls a sandbox answered without reporting them yet
        run.output = outcome.output
        run.status = outcome.status
        run.error_name = outcome.error_name
        run.duration_s = outcome.duration_s
        run.output_chars = outcome.output_chars
        run.displays = outcome.displays
        run.misbehaved = getattr(outcome, "misbehaved", None)
        if dispatcher.result_set:  # the script called set_result(value)
            result.value = dispatcher.result_value
        self._emit("script_finished", run)
        return run


def _request_chars(system: list[TextBlockParam], api_tools: list[ToolUnionParam], messages: list[Any]) -> int:
    """The size of a request as JSON text (for estimating its tokens before it is sent)."""
    return len(json.dumps([system, api_tools, messages], ensure_ascii=False, default=str))


def _text_of(message: Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text").strip()


def _read_as(reply: Reply) -> str:
    if reply.scripts:
        return f"script ({reply.scripts[0].source})"
    return "tool call"


def _assistant_content(message: Message) -> list[ContentBlockParam]:
    """The reply as it is sent back; empty text blocks dropped (the API refuses them)."""
    blocks = [_block_param(b) for b in message.content if b.type != "text" or b.text.strip()]
    return blocks or [{"type": "text", "text": "(empty reply)"}]


def _prose_outside_code(text: str) -> bool:
    return bool(re.sub(r"```.*?(?:```|\Z)", "", text, flags=re.S).strip())


def _block_param(block: Any) -> ContentBlockParam:
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    param: ContentBlockParam = json.loads(block.model_dump_json(exclude_none=True))
    return param


def _tool_result(tool_use_id: str, content: str, is_error: bool) -> ToolResultBlockParam:
    block: ToolResultBlockParam = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    if is_error:
        block["is_error"] = True
    return block
