"""Run one attack script through the real path: scripted model turn → Agent → SandboxKernel → the model's view."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import anthropic

from codeagent.agent.loop import Agent, AgentSettings
from codeagent.agent.trace import CodeAgentResult
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, last_tool_result, text_turn
from codeagent.tools.registry import Tool, ToolRegistry, make_tool
from tests.security.probes import PRELUDE, Probe, parse_probes

#: errno names that mean "the kernel refused": seccomp, Landlock, missing capability, no route, hidden path.
NET_DENIED = {"EPERM", "EACCES", "EAFNOSUPPORT", "ENETUNREACH", "EHOSTUNREACH"}
UNIX_DENIED = {"ENOENT", "ECONNREFUSED", "EPERM", "EACCES"}
READ_DENIED = {"ENOENT", "EACCES", "EPERM"}
WRITE_DENIED = {"EACCES", "EPERM", "EROFS", "ENOENT"}
SYSCALL_DENIED = {"EPERM", "EACCES", "ENOSYS"}
SIGNAL_DENIED = {"ESRCH", "EPERM"}


#: Run the suite against a weaker sandbox to see the attacks succeed (e.g. ``unsandboxed``); default ``auto``.
MODE = os.environ.get("CODEAGENT_SECURITY_SANDBOX_MODE", "auto")
#: The platform matrix (tests/platforms) also measures the explicit opt-in to a sandbox that stays uid 0.
ALLOW_ROOT = os.environ.get("CODEAGENT_SECURITY_ALLOW_ROOT") == "1"
#: ... and the explicit opt-in to a sandbox without seccomp (a kernel that cannot load filters).
ALLOW_NO_SECCOMP = os.environ.get("CODEAGENT_SECURITY_ALLOW_NO_SECCOMP") == "1"
#: The same opt-ins as ``CodeAgent`` traits, for tests that go through the magic.
OPT_IN_TRAITS = {"sandbox_allow_root": ALLOW_ROOT, "sandbox_allow_no_seccomp": ALLOW_NO_SECCOMP}


def socket_locked(sandbox: SandboxKernel) -> bool:
    """Whether the sandbox may create no socket (no mount namespace: seccomp_filter.lock_shared_host)."""
    return "seccomp" in sandbox.layers and "mounts" not in sandbox.layers


def tight_policy(**overrides: object) -> SandboxPolicy:
    """Small limits so resource attacks end in seconds (the defaults allow minutes)."""
    base = SandboxPolicy(
        mode=MODE,
        allow_root=ALLOW_ROOT,
        allow_no_seccomp=ALLOW_NO_SECCOMP,
        wall_seconds=3,
        cpu_seconds=2,
        memory_mb=1536,
        max_processes=32,
        max_file_mb=8,
        max_open_files=256,
        output_chars=4_000,
        output_hard_bytes=200_000,
    )
    return base.merged(**overrides)


class HostTools:
    """Tools registered in the notebook that count every call that reaches them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.registry = ToolRegistry()

        def lookup(n: int) -> int:
            """Twice n (a harmless tool whose calls the tests count)."""
            self.calls.append(("lookup", n))
            return 2 * n

        def store(note: str) -> int:
            """Keep a note on the host; returns its length."""
            self.calls.append(("store", note))
            return len(note)

        for func in (lookup, store):
            self.add(func)

    def add(self, func: Any, **options: Any) -> Tool:
        """Register ``func`` in this registry only (never in the notebook's default registry)."""
        return self.registry.add(make_tool(func, **options))


@dataclass
class Attack:
    """What one attack script did, as the model saw it."""

    code: str
    output: str  # the tool_result content sent back to the model
    status: str  # ScriptRun.status: ok, error, timeout, crashed, interrupted
    error_name: str | None
    result: CodeAgentResult
    probes: dict[str, Probe] = field(default_factory=dict)

    def probe(self, label: str) -> Probe:
        if label not in self.probes:
            raise AssertionError(f"the script printed no result for {label!r}; it said:\n{self.output[-3000:]}")
        return self.probes[label]

    def assert_denied(self, label: str, errnos: set[str] | None = None, excs: set[str] | None = None) -> Probe:
        """The attempt ``label`` raised, with one of ``errnos`` (names) and/or one of the exception ``excs``."""
        p = self.probe(label)
        assert p.denied, f"attack {label!r} SUCCEEDED: {p.value}\n--- script output ---\n{self.output[-3000:]}"
        if errnos is not None:
            assert p.err in errnos, f"{label}: stopped by {p.exc} {p.err}, expected errno in {sorted(errnos)}"
        if excs is not None:
            assert p.exc in excs, f"{label}: stopped by {p.exc} {p.err}, expected one of {sorted(excs)}"
        return p

    def assert_no_secret(self, secrets: list[str]) -> None:
        leaked = [s for s in secrets if s in self.output]
        assert not leaked, f"secrets reached the model: {leaked}\n{self.output[-3000:]}"


class AttackRunner:
    """``runner(code)``: the model writes ``code``; the real Agent runs it in ``sandbox``; returns an Attack."""

    def __init__(self, sandbox: SandboxKernel, server: MessagesServer, tools: HostTools) -> None:
        self.sandbox = sandbox
        self.server = server
        self.tools = tools
        self.client = anthropic.Anthropic(base_url=server.url, api_key="test-key-not-secret", max_retries=0)

    def __call__(self, code: str, *, prelude: bool = True) -> Attack:
        script = (PRELUDE + "\n" + code) if prelude else code
        seen: dict[str, str] = {}

        def answer(body: dict[str, Any]) -> Turn:
            seen["output"] = last_tool_result(body)
            return text_turn("The script ran.")

        self.server.add_turns(code_turn(script), answer)
        settings = AgentSettings(model="claude-test", max_steps=2, output_chars=self.sandbox.policy.output_chars)
        agent = Agent(self.client, self.sandbox, self.tools.registry, settings)
        result = agent.run("Run this script.")
        assert result.status == "done", f"the agent loop failed: {result.status} {result.error}"
        assert len(result.scripts) == 1, "the scripted model runs exactly one script"
        run = result.scripts[0]
        output = seen.get("output", "")
        assert output == run.output, "the model must see exactly the script's (capped) output"
        return Attack(script, output, run.status, run.error_name, result, parse_probes(output))

    @property
    def system_prompt(self) -> str:
        """The system prompt of the newest model request (with the tool stubs)."""
        return str(self.server.requests[-1]["system"][0]["text"])
