"""Carrying out one model reply: its scripts in the sandbox (after ``--confirm`` asked) and its direct tool calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anthropic.types import Message, ToolResultBlockParam, ToolUseBlock

from codeagent.agent.actions import BAD_EXECUTE, Reply
from codeagent.agent.message_params import tool_result
from codeagent.agent.prompt import EXECUTE_PYTHON
from codeagent.agent.settings import Sandbox
from codeagent.agent.trace import CodeAgentResult, ScriptRun
from codeagent.sandbox.host.output import HOST, LiveTagger, cap_text, mark_imitations
from codeagent.tools.approval import INTERRUPTED_NOTE, Approvals, Decision, script_denial_message
from codeagent.tools.dispatch import TRACE_VALUE_CHARS, ToolDispatcher, ToolGate
from codeagent.tools.records import ToolCallRecord
from codeagent.tools.registry import ToolRegistry
from codeagent.tools.toolbox import ToolBox


class ActionRunner:
    """Runs what a reply asks for and records it in the result; ``emit`` reports each step to the trace."""

    def __init__(
        self,
        sandbox: Sandbox,
        registry: ToolRegistry | ToolBox,
        emit: Callable[[str, Any], None],
        *,
        gate: ToolGate | None,
        approvals: Approvals | None,
        output_chars: int,
    ) -> None:
        self.sandbox = sandbox
        self.registry = registry
        self._emit = emit
        self.gate = gate
        self.approvals = approvals
        self.output_chars = output_chars

    def run(
        self, result: CodeAgentResult, step: int, message: Message, reply: Reply
    ) -> str | list[ToolResultBlockParam]:
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
                answers[tool_use_id] = tool_result(tool_use_id, content, run.status != "ok")
        for block in reply.tool_uses:
            answers[block.id] = self._run_tool(result, step, block)
        return [answers[b.id] for b in message.content if b.type == "tool_use"]

    def _run_tool(self, result: CodeAgentResult, step: int, block: ToolUseBlock) -> ToolResultBlockParam:
        """Answer one tool_use block (a direct tool, or one that cannot run) with a tool_result block."""
        if block.name == EXECUTE_PYTHON:
            return tool_result(block.id, BAD_EXECUTE, True)
        tool = self.registry.get(block.name)
        if tool is None or tool.mode == "code":
            closest = getattr(self.registry, "closest", None)
            hint = (
                f" Closest, to call in a script: {', '.join(closest(block.name, 5))}."
                if closest and tool is None
                else ""
            )
            return tool_result(block.id, f"There is no tool named {block.name[:80]!r}.{hint}", True)
        calls: list[ToolCallRecord] = []
        reply = ToolDispatcher(self.registry, calls.append, self.gate).call(block.id, block.name, block.input)
        for call in calls:
            result.direct_calls.append(call)
            self._emit("tool_call", call)
        if reply.ok:
            text = mark_imitations(cap_text(reply.text.replace(HOST, ""), self.output_chars, HOST))
            return tool_result(block.id, text, False)
        return tool_result(block.id, reply.error_text, True)

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
        live = LiveTagger()  # the live stream tags imitations of the host's notes as the final text does

        def on_output(text: str) -> None:
            if shown := live.feed(text):
                self._emit("script_output", shown)

        try:
            outcome = self.sandbox.execute(
                code, dispatcher, on_output=on_output, on_display=lambda bundle: self._emit("display", bundle)
            )
        except KeyboardInterrupt:
            dispatcher.report()
            run.status = "interrupted"
            self._emit("script_finished", run)
            raise
        dispatcher.report()  # calls a sandbox answered without reporting them yet
        if rest := live.flush():
            self._emit("script_output", rest)
        run.output = outcome.output
        run.status = outcome.status
        run.error_name = outcome.error_name
        run.duration_s = outcome.duration_s
        run.output_chars = outcome.output_chars
        run.displays = outcome.displays
        run.misbehaved = getattr(outcome, "misbehaved", None)
        run.notice = getattr(outcome, "notice", None)
        if dispatcher.result_set:  # the script called set_result(value)
            result.value = dispatcher.result_value
        self._emit("script_finished", run)
        return run
