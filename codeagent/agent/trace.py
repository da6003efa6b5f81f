"""What one ``%codeagent`` call did: trace events as they happen, and the finished result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from codeagent.tools.records import ToolCallRecord

Status = Literal["running", "done", "max_steps", "budget", "error", "interrupted"]
EventKind = Literal[
    "model_started",  # a request to the model was sent (data: step)
    "model_text",  # streamed text delta (data: text)
    "model_finished",  # one model response complete (data: ModelStep)
    "script_started",  # data: ScriptRun (no output yet)
    "script_output",  # data: text chunk printed by the script
    "display",  # data: a rich output bundle {"data", "metadata"} from the script (untrusted)
    "tool_call",  # data: ToolCallRecord
    "approval_asked",  # the person is being asked about a tool call or a script (data: approval.Question)
    "script_finished",  # data: ScriptRun
    "correction",  # the reply was neither an answer nor an action; data: what the model is told
    "error",  # data: message
    "done",  # data: CodeAgentResult
]


@dataclass
class Usage:
    """Token usage summed over the model requests of a call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    requests: int = 0

    def add(self, usage: Any) -> None:
        """Add an ``anthropic.types.Usage`` (or another Usage)."""
        self.input_tokens += getattr(usage, "input_tokens", 0) or 0
        self.output_tokens += getattr(usage, "output_tokens", 0) or 0
        self.cache_creation_input_tokens += getattr(usage, "cache_creation_input_tokens", 0) or 0
        self.cache_read_input_tokens += getattr(usage, "cache_read_input_tokens", 0) or 0
        self.requests += getattr(usage, "requests", 1)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass
class ScriptRun:
    """One ``execute_python`` call: the code, what the model saw, how it ended."""

    step: int
    code: str
    output: str = ""
    status: str = "running"  # ok, error, timeout, crashed, interrupted, denied (not run: --confirm)
    error_name: str | None = None
    duration_s: float = 0.0
    output_chars: int = 0  # printed by the script, before capping
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    displays: list[dict[str, Any]] = field(default_factory=list)
    approval: str | None = None  # with --confirm: who let it run, or why it did not
    misbehaved: str | None = None  # what the host dropped from the sandbox (malformed messages, limits)
    notice: str | None = None  # what the host did about the script (timeout, restart, quota), written by the host


@dataclass
class ModelStep:
    """One model response."""

    index: int
    text: str
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    duration_s: float
    read_as: str = ""  # how the reply was taken: "script (tool_use|fenced|json)", "correction", ...


@dataclass
class TraceEvent:
    kind: EventKind
    data: Any = None
    at: float = field(default_factory=time.time)


Listener = Callable[[TraceEvent], None]


@dataclass
class CodeAgentResult:
    """The outcome of one ``%codeagent`` call. ``answer`` is the model's final text."""

    prompt: str
    model: str
    answer: str = ""
    answer_source: str = "model"  # "model", or "repeated_script" / "answer_from_output": the script's output
    status: Status = "running"
    error: str | None = None
    scripts: list[ScriptRun] = field(default_factory=list)
    direct_calls: list[ToolCallRecord] = field(default_factory=list)  # tools the model called itself
    steps: list[ModelStep] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    value: Any = None
    duration_s: float = 0.0
    replayed: bool = False
    sandbox_layers: list[str] = field(default_factory=list)
    stopped_by: str | None = None  # the limit that stopped the call (status "budget"), e.g. "--max-tool-calls 3"
    sandbox_warning: str = ""  # shown on every run in a weaker mode than full
    sections: list[str] = field(default_factory=list)  # sections of the final view opened when it is shown
    #: Notebook variables copied into the sandbox for this call, with why ("--data", "@df", "named in the question")
    handed_over: dict[str, str] = field(default_factory=dict)

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        return [call for script in self.scripts for call in script.tool_calls] + self.direct_calls

    @property
    def outputs(self) -> list[str]:
        """The script output the model saw, one entry per script."""
        return [s.output for s in self.scripts]

    @property
    def tool_result_chars(self) -> int:
        """Characters the tools returned to the scripts (data that stayed out of the model's context)."""
        return sum(c.result_chars for c in self.tool_calls)

    @property
    def model_saw_chars(self) -> int:
        """Characters of tool output that went back to the model: script output, plus direct tool results."""
        return sum(len(s.output) for s in self.scripts) + sum(c.result_chars for c in self.direct_calls)

    def __repr__(self) -> str:
        answer = self.answer if len(self.answer) <= 80 else self.answer[:77] + "..."
        return (
            f"CodeAgentResult(status={self.status!r}, scripts={len(self.scripts)}, "
            f"tool_calls={len(self.tool_calls)}, tokens={self.usage.total_tokens}, answer={answer!r})"
        )

    def __str__(self) -> str:
        return self.answer if self.status == "done" else f"[{self.status}] {self.error or self.answer}"

    def cell_source(self, variable: str = "result", registry: Any = None, namespace: Any = None) -> str:
        """The scripts the model ran, rewritten to run in the notebook itself (see :meth:`to_cell`)."""
        from codeagent.agent.notebook_cell import cell_source
        from codeagent.tools.mcp.servers import default_servers
        from codeagent.tools.registry import default_registry
        from codeagent.tools.toolbox import ToolBox

        if namespace is None:
            namespace = _notebook_namespace()
        if registry is None:  # the notebook's @tool functions and its MCP servers' tools
            registry = ToolBox(default_registry, default_servers)
            registry.refresh()
        return cell_source(self, registry, namespace, variable)

    def to_cell(self, variable: str = "result") -> None:
        """Put a new cell below the current one holding the scripts the model ran, rewritten to run here.

        Running that cell reproduces the scripts' output without calling the model: tools are your real
        ``@tool`` functions and MCP tools (called as the sandbox's stubs called them), ``--data`` names are your
        variables, ``set_result(x)`` becomes ``variable = x``.
        It runs in the notebook's own kernel, unsandboxed. Uses IPython's ``set_next_input``.
        """
        shell = _shell()
        source = self.cell_source(variable, namespace=shell.user_ns)
        shell.set_next_input(source, replace=False)


def _shell() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("to_cell() needs IPython (a notebook or the IPython shell); use cell_source() elsewhere")
    return shell


def _notebook_namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}
