"""The model loop: ask, run the scripts it writes, hand back what they printed, until it answers.

Carrying out a reply's actions lives in ``runner.py``, the request params in ``message_params.py``, the settings
in ``settings.py`` (re-exported here: ``from codeagent.agent.loop import AgentSettings`` keeps working).
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
from anthropic.types import Message, MessageParam, TextBlockParam, ToolUnionParam

from codeagent.agent.actions import Reply, read_reply
from codeagent.agent.budget import Budget
from codeagent.agent.client import describe_api_error
from codeagent.agent.message_params import assistant_content, prose_outside_code, read_as, request_chars, text_of
from codeagent.agent.prompt import (
    EXECUTE_PYTHON_TOOL,
    approval_note,
    direct_tool_definitions,
    system_prompt,
    tool_limit_note,
)
from codeagent.agent.runner import ActionRunner
from codeagent.agent.settings import AgentSettings, Sandbox
from codeagent.agent.trace import CodeAgentResult, Listener, ModelStep, TraceEvent
from codeagent.tools.approval import Approvals
from codeagent.tools.dispatch import ToolGate
from codeagent.tools.registry import ToolRegistry
from codeagent.tools.toolbox import ToolBox

__all__ = ["Agent", "AgentSettings", "Sandbox"]


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
        self.actions = ActionRunner(
            sandbox, registry, self._emit, gate=self.gate, approvals=approvals, output_chars=self.settings.output_chars
        )
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
            reply = read_reply(message.content, code_tools, direct_tools, getattr(self.registry, "closest", None))
            if reply.correction and not corrected and step < s.max_steps:
                corrected = True  # one corrective turn; whatever comes next is the outcome
                result.steps[-1].read_as = "correction"
                self._emit("correction", reply.correction)
                messages.append({"role": "assistant", "content": assistant_content(message)})
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
            result.steps[-1].read_as = read_as(reply)
            messages.append({"role": "assistant", "content": assistant_content(message)})
            messages.append({"role": "user", "content": self.actions.run(result, step, message, reply)})
            if self.budget is not None and self.budget.check_tools():
                self._stop_for_budget(result)
                return
            ran = [run for run in result.scripts if run.step == step]
            if s.answer_from_output and ran and ran[-1].status == "ok":
                result.answer = ran[-1].output.strip()
                result.answer_source = "answer_from_output"
                result.status = "done"
                return
        result.answer = text_of(message)
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
        if reply.scripts[0].source == "fenced" and prose_outside_code(reply.text):
            result.answer = reply.text  # an answer that shows the script it used
            return True
        result.steps[-1].read_as = "repeated script"
        result.answer = last.output.strip()
        result.answer_source = "repeated_script"
        return True

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
        self._request_size = size = request_chars(system, api_tools, messages)
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
            if text_of(message):
                self._emit("model_text", text_of(message))
        result.usage.add(message.usage)
        if self.budget is not None:
            self.budget.after_request(message.usage, self._request_size)
        model_step = ModelStep(
            index=step,
            text=text_of(message),
            stop_reason=message.stop_reason,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            duration_s=time.perf_counter() - started,
        )
        result.steps.append(model_step)
        self._emit("model_finished", model_step)
        return message
