"""Where codeagent leans on a dependency's internals or an undocumented detail, one test here fails loudly (and
says what to adapt) when the dependency changes. Each seam is used in exactly one place, named in the test."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import anthropic
import pytest
from ipykernel import iostream
from jupyter_client.kernelspec import NoSuchKernel

from codeagent.agent.cassette_wire import http_module
from codeagent.kernel_ext.options import option_arity, split_options
from codeagent.sandbox.host.jupyter import SANDBOX_KERNEL_NAME, exit_status, kernel_manager


def test_the_sdk_client_is_built_on_the_http_package_the_cassettes_use() -> None:
    """codeagent.agent.cassette_wire: record/replay transports subclass this package's BaseTransport."""
    http = http_module()
    assert isinstance(anthropic.DefaultHttpxClient(), http.Client), (
        f"anthropic's DefaultHttpxClient is no longer a {http.__name__}.Client: adapt http_module()"
    )
    assert issubclass(http.HTTPTransport, http.BaseTransport)


def test_argparse_still_lists_actions_with_their_option_strings() -> None:
    """codeagent.kernel_ext.options.option_arity reads ``parser._actions``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("-n", "--new", action="store_true")
    assert option_arity(parser) == {"-h": False, "--help": False, "--model": True, "-n": False, "--new": False}
    assert split_options("--model m -n 'it''s' a question", parser) == (["--model", "m", "-n"], "'it''s' a question")


def test_jupyter_client_starts_the_kernel_from_our_one_spec(tmp_path: Path) -> None:
    """codeagent.sandbox.host.jupyter: a KernelManager resolves its spec through ``kernel_spec_manager``."""
    km = kernel_manager(
        ["python", "-c", "pass"], ip=f"{tmp_path}/k", connection_file=f"{tmp_path}/k.json", display_name="seam"
    )
    assert km.kernel_name == SANDBOX_KERNEL_NAME
    assert km.kernel_spec is not None and km.kernel_spec.argv == ["python", "-c", "pass"]
    assert km.kernel_spec.interrupt_mode == "signal"
    assert km.transport == "ipc" and km.ip == f"{tmp_path}/k"
    with pytest.raises(NoSuchKernel):
        km.kernel_spec_manager.get_kernel_spec("python3")
    assert exit_status(km) is None  # not started


def test_ipykernel_iopub_pipe_hooks_are_where_kernel_entry_replaces_them() -> None:
    """codeagent.sandbox.guest.kernel_entry replaces IOPubThread._setup_pipe_in/_setup_pipe_out (the pipe for
    forked children's output binds tcp://127.0.0.1, which the sandbox may not have) and relies on the attributes
    the originals set and read."""
    thread = iostream.IOPubThread
    for name in ("_setup_pipe_in", "_setup_pipe_out", "_handle_pipe_msg"):
        assert callable(getattr(thread, name, None)), f"ipykernel's IOPubThread has no {name} any more"
    source = inspect.getsource(thread)
    for attribute in ("self._pipe_uuid", "self._pipe_in", "self._pipe_flag", "self._setup_pipe_out()"):
        assert attribute in source, f"ipykernel's IOPubThread no longer uses {attribute}: adapt kernel_entry"
    assert inspect.signature(thread._setup_pipe_out).parameters.keys() == {"self"}
