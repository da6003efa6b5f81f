"""codeagent: programmatic tool calling for Jupyter.

``%load_ext codeagent``, register functions with ``@tool``, then ask ``%codeagent <question>``: the model
writes one Python script that calls your tools in a separate locked-down kernel, and only what the script
prints reaches the model.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

# Host-side modules log to named loggers under "codeagent"; nothing is printed unless the notebook configures
# logging (e.g. logging.getLogger("codeagent").setLevel("INFO") plus a handler).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = [
    "BudgetExceeded",
    "CodeAgentResult",
    "SandboxPolicy",
    "ToolDenied",
    "add_mcp_server",
    "load_ipython_extension",
    "tool",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    from codeagent.agent.trace import CodeAgentResult
    from codeagent.sandbox.host.policy import SandboxPolicy
    from codeagent.sandbox.protocol.errors import BudgetExceeded, ToolDenied
    from codeagent.tools.mcp.servers import add_mcp_server
    from codeagent.tools.registry import tool

_LAZY = {
    "tool": "codeagent.tools.registry",
    "CodeAgentResult": "codeagent.agent.trace",
    "SandboxPolicy": "codeagent.sandbox.host.policy",
    # one class on both sides: the host raises it, the sandbox's script catches it (standard library only)
    "ToolDenied": "codeagent.sandbox.protocol.errors",
    "BudgetExceeded": "codeagent.sandbox.protocol.errors",
    "add_mcp_server": "codeagent.tools.mcp.servers",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing codeagent (e.g. inside the sandbox, for its runtime) stays cheap.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'codeagent' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext codeagent``: register the magics (loading twice is harmless)."""
    from codeagent.kernel_ext.ipython_hooks import SameCellRescue, question_mark_transformer
    from codeagent.kernel_ext.magic import CodeAgent

    if any(isinstance(m, CodeAgent) for m in ipython.magics_manager.registry.values()):
        return
    ipython.register_magics(CodeAgent(shell=ipython))
    if question_mark_transformer not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(question_mark_transformer)
        # this cell was transformed before the line above: its own `%codeagent …?` lines need a hand
        SameCellRescue(ipython, lambda question: ipython.run_line_magic("codeagent", question)).arm()
    from codeagent.kernel_ext import completion

    completion.install(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext codeagent``: stop the sandbox and remove the magics."""
    from codeagent.kernel_ext.ipython_hooks import question_mark_transformer
    from codeagent.kernel_ext.magic import CodeAgent

    for key, magics in list(ipython.magics_manager.registry.items()):
        if isinstance(magics, CodeAgent):
            magics.close()
            del ipython.magics_manager.registry[key]
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("codeagent", None)
    if question_mark_transformer in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(question_mark_transformer)
    from codeagent.kernel_ext import completion

    completion.uninstall(ipython)
