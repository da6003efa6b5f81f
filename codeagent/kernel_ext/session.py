"""The per-notebook session: conversation so far, the sandbox handle, the tool registry, usage totals."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anthropic.types import MessageParam

from codeagent.agent.budget import Budget
from codeagent.agent.loop import Agent, AgentSettings
from codeagent.agent.pricing import estimate_cost
from codeagent.agent.trace import CodeAgentResult, Listener, Usage
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.pool import SandboxPool
from codeagent.tools.approval import Approvals
from codeagent.tools.mcp.servers import McpServers, default_servers
from codeagent.tools.registry import ToolRegistry, default_registry
from codeagent.tools.toolbox import ToolBox

if TYPE_CHECKING:
    from codeagent.sandbox.host.gateway.settings import GatewaySettings


@dataclass
class Session:
    """State that lives as long as the notebook's kernel (or until ``--reset``)."""

    registry: ToolRegistry = field(default_factory=lambda: default_registry)
    servers: McpServers = field(default_factory=lambda: default_servers)
    history: list[MessageParam] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    spent_usd: float = 0.0  # estimated, at each call's model's prices (for c.CodeAgent.session_budget_usd)
    #: Where sandboxes run: None for this machine, else a Kernel / Enterprise Gateway (CodeAgent.gateway_url).
    gateway: GatewaySettings | None = None
    pool_size: int = 1  # spare sandboxes kept started beside the running one
    _sandbox: SandboxKernel | None = None
    _pool: SandboxPool | None = None
    _pool_gateway: GatewaySettings | None = None

    def warm_up(self, policy: SandboxPolicy) -> None:
        """Start sandboxes in the background so a call does not wait for kernel start-up."""
        self._pool_for(policy)

    def _pool_for(self, policy: SandboxPolicy) -> SandboxPool:
        if self._pool is None or self._pool.policy != policy or self._pool_gateway != self.gateway:
            if self._pool is not None:
                self._pool.close()
            self._pool = SandboxPool(policy, size=self.pool_size, factory=self._factory()).fill(max(self.pool_size, 1))
            self._pool_gateway = self.gateway
        return self._pool

    def _factory(self) -> Any:
        if self.gateway is None:
            return None
        from codeagent.sandbox.host.gateway.sandbox import GatewaySandbox

        gateway = self.gateway
        return lambda policy: GatewaySandbox(policy, gateway).start()

    def sandbox(self, policy: SandboxPolicy) -> SandboxKernel:
        """The running sandbox; a warm one from the pool when none runs or the policy changed."""
        stale = self._sandbox is not None and getattr(self._sandbox, "settings", None) != self.gateway
        if self._sandbox is not None and (stale or self._sandbox.policy != policy or not self._sandbox.is_alive()):
            self._sandbox.shutdown()
            self._sandbox = None
        if self._sandbox is None:
            self._sandbox = self._pool_for(policy).acquire()
        return self._sandbox

    def ask(
        self,
        prompt: str,
        client: Any,
        settings: AgentSettings,
        policy: SandboxPolicy,
        listener: Listener | None = None,
        data_section: str = "",
        approvals: Approvals | None = None,
        budget: Budget | None = None,
    ) -> CodeAgentResult:
        """Run one prompt, continuing the conversation."""
        agent = Agent(
            client, self.sandbox(policy), self.toolbox(), settings, listener, approvals=approvals, budget=budget
        )
        result = agent.run(prompt, history=self.history, data_section=data_section)
        self.calls += 1
        self.usage.add(result.usage)
        self.spent_usd += estimate_cost(result.model, result.usage) or 0.0
        if result.status in ("done", "max_steps", "budget"):
            self.history.extend(conversation_turns(result))
        return result

    def toolbox(self, report: bool = True) -> ToolBox:
        """Every tool source, MCP servers started on first use; a server that fails is reported in one line
        and left out, the others keep working."""
        box = ToolBox(self.registry, self.servers)
        for line in box.refresh():
            if report:
                print(f"codeagent: {line}", file=sys.stderr)
        return box

    def sandboxes_report(self) -> str:
        """How many sandbox kernels this notebook runs (the active one and the pool's spares)."""
        running = 1 if self._sandbox is not None and self._sandbox.is_alive() else 0
        spares = sum(self._pool.counts()) if self._pool is not None else 0
        return (
            f"  sandboxes: {running} running this notebook's scripts, {spares} spare started ahead in the warm pool "
            f"(CodeAgent.pool_size = {self.pool_size}; 0 keeps no spare, for small machines)"
        )

    def new_conversation(self) -> None:
        self.history.clear()

    def reset_sandbox(self) -> None:
        """Drop the running sandbox; the next call takes a warm one from the pool."""
        if self._sandbox is not None:
            self._sandbox.shutdown()
            self._sandbox = None

    def close(self) -> None:
        self.reset_sandbox()
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def conversation_turns(result: CodeAgentResult) -> list[MessageParam]:
    """What a follow-up remembers of a call: the prompt, the scripts run and the answer (no data)."""
    scripts = "\n\n".join(f"```python\n{s.code}\n```" for s in result.scripts)
    recap = f"(Scripts I ran:)\n{scripts}\n\n{result.answer}" if scripts else result.answer
    return [
        {"role": "user", "content": result.prompt},
        {"role": "assistant", "content": recap or "(no answer)"},
    ]
