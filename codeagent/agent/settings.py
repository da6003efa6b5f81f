"""How the model is asked (:class:`AgentSettings`), and what the loop needs of a sandbox (:class:`Sandbox`)."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from codeagent.agent.profiles import PROFILES, ModelProfile
from codeagent.sandbox.host.results import ExecutionResult


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
