"""Run an example notebook in a real kernel (nbclient), offline: no API key, no reachable API."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import nbformat

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
KEY_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
#: Run after the last cell: stop the notebook's sandboxes before its kernel is shut down.
TEARDOWN = """\
if "codeagent" in get_ipython().extension_manager.loaded:
    get_ipython().run_line_magic("unload_ext", "codeagent")
"""


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` for a port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def kernel_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The notebook kernel's environment: this one without API keys, the API pointed at a closed port, and
    codeagent importable even from a checkout that is not installed. ``overrides`` set (or, with None, drop)
    variables."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    env["ANTHROPIC_BASE_URL"] = closed_port_url()
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, path) if p)
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_notebook(
    path: str | Path,
    *,
    workdir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
    extra_code: str | None = None,
    kernel_stderr: IO[Any] | None = None,
) -> tuple[nbformat.NotebookNode, list[Any]]:
    """Execute the notebook at ``path`` with its directory (or ``workdir``) as the kernel's working directory.

    Returns the executed notebook and, when ``extra_code`` is given, the outputs of that code run after the
    last cell (it is not kept in the notebook). A last hidden cell unloads codeagent, so the notebook's
    sandboxes stop with it. The kernel's own stderr goes to ``kernel_stderr`` (default:
    inherited). Raises ``nbclient.exceptions.CellExecutionError`` if a cell fails.
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cells = len(nb.cells)
    if extra_code is not None:
        nb.cells.append(nbformat.v4.new_code_cell(extra_code))
    nb.cells.append(nbformat.v4.new_code_cell(TEARDOWN))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir or path.parent)}},
        store_widget_state=True,
    )
    start: dict[str, Any] = {"env": dict(env if env is not None else kernel_env())}
    if kernel_stderr is not None:
        start["stderr"] = kernel_stderr
    try:
        client.execute(**start)
    finally:
        added = nb.cells[cells:]
        del nb.cells[cells:]
    extra_outputs = list(added[0].get("outputs", [])) if extra_code is not None else []
    return nb, extra_outputs
