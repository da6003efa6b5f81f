"""Loading the extension, help text, configuration through traitlets."""

from __future__ import annotations

from typing import Any

from IPython.utils.capture import capture_output
from traitlets.config import Config

import codeagent
from codeagent.kernel_ext.magic import CodeAgent
from codeagent.testing.messages_server import MessagesServer, text_turn


def test_loading_twice_registers_one_magic_and_unload_removes_it(shell: Any) -> None:
    shell.run_line_magic("load_ext", "codeagent")
    shell.run_line_magic("reload_ext", "codeagent")
    instances = [m for m in shell.magics_manager.registry.values() if isinstance(m, CodeAgent)]
    assert len(instances) == 1
    assert shell.find_line_magic("codeagent") is not None and shell.find_cell_magic("codeagent") is not None


def test_help_lists_the_options(shell: Any) -> None:
    doc = shell.find_line_magic("codeagent").__doc__
    for option in (
        "--model",
        "--max-steps",
        "-o NAME, --output NAME",
        "--new",
        "--reset",
        "--show",
        "--sandbox-info",
    ):
        assert option in doc
    with capture_output() as out:
        shell.run_cell("%codeagent?", store_history=False)
    assert "--max-steps" in str(out.stdout) + str([o.data for o in out.outputs])


def test_config_from_ipython_config_and_percent_config(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    cfg = Config()
    cfg.CodeAgent.model = "claude-from-config"
    cfg.CodeAgent.max_steps = 4
    cfg.CodeAgent.warm_start = False
    original = shell.config
    shell.config = cfg
    try:
        configured = CodeAgent(shell=shell)
        assert configured.model == "claude-from-config" and configured.max_steps == 4
    finally:
        shell.config = original
    model_server.add_turns(text_turn("ok"))
    shell.run_line_magic("config", "CodeAgent.model = 'claude-percent-config'")
    try:
        with capture_output():
            shell.run_line_magic("codeagent", "hello")
    finally:
        shell.run_line_magic("config", "CodeAgent.model = 'claude-sonnet-5-5'")
    assert model_server.requests[0]["model"] == "claude-percent-config"


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, codeagent\n"
        "print(sorted(m for m in ('anthropic', 'zmq', 'pydantic', 'ipywidgets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert codeagent.tool is codeagent.tools.registry.tool
