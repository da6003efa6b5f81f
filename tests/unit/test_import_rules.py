"""The guest side of the sandbox runs inside the lockdown: the standard library and the protocol only.

import-linter (``lint-imports`` in ``.ci/run``) checks the rooms and forbids the known third-party packages; this
test closes the gap a deny-list leaves: *any* non-stdlib import in guest/ or protocol/ fails, unless it is one of
the few stated exceptions.
"""

from __future__ import annotations

import sys

import grimp
import pytest

# module -> third-party top-level packages it may import
ALLOWED = {
    "codeagent.sandbox.guest.kernel_entry": {"ipykernel", "IPython", "zmq"},  # it starts ipykernel
    "codeagent.sandbox.guest.shell": {"IPython"},  # the running shell, for the runtime and the bridge clients
    "codeagent.sandbox.guest.lockdown.seccomp_filter": {"pyseccomp"},  # the seccomp layer, over libseccomp
    "codeagent.sandbox.protocol.codec": {"numpy", "pandas", "pyarrow"},  # lazily, for values of those types
    "codeagent.sandbox.protocol.frames": {"numpy"},  # lazily, to allocate large receive buffers when installed
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("codeagent", include_external_packages=True, cache_dir=None)


def _third_party(graph: grimp.ImportGraph, module: str) -> set[str]:
    imported = graph.find_modules_directly_imported_by(module)
    return {m.partition(".")[0] for m in imported if not m.startswith("codeagent")} - set(sys.stdlib_module_names)


@pytest.mark.parametrize("room", ["codeagent.sandbox.guest", "codeagent.sandbox.protocol"])
def test_guest_and_protocol_import_only_the_standard_library(graph: grimp.ImportGraph, room: str) -> None:
    modules = sorted(graph.find_descendants(room) | {room})
    assert len(modules) > 2
    offenders = {m: sorted(_third_party(graph, m) - ALLOWED.get(m, set())) for m in modules}
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_the_stated_exceptions_are_still_needed(graph: grimp.ImportGraph) -> None:
    """An exception nobody uses any more is removed, so the list stays the truth."""
    for module, allowed in ALLOWED.items():
        assert _third_party(graph, module) & allowed == allowed, module


def test_protocol_imports_nothing_else_of_codeagent(graph: grimp.ImportGraph) -> None:
    room = "codeagent.sandbox.protocol"
    for module in graph.find_descendants(room) | {room}:
        inner = {m for m in graph.find_modules_directly_imported_by(module) if m.startswith("codeagent")}
        assert all(m.startswith(room) for m in inner), (module, inner)
