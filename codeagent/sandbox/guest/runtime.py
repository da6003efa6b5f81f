"""The stub side of the bridge, imported inside the sandbox kernel. Standard library (and the codec) only.

``install(address, token, specs, namespace, max_request_bytes=...)`` defines one function per tool in the
script's namespace, plus ``set_result``, ``ToolError``, ``ToolDenied`` and ``BudgetExceeded``. Calling
``tool(...)`` blocks and returns the value (usable anywhere, including in a cell that also uses ``await``);
``await tool.aio(...)`` is the async form, so ``await asyncio.gather(*[tool.aio(x) for x in xs])`` has all
calls in flight at once. A tool that raised on the host raises here with the same type name and message.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from typing import Any

from codeagent.sandbox.guest import leftovers, shell
from codeagent.sandbox.guest.bridge_client import (
    BridgeClient,
    BridgeError,
    ToolError,
    head_template,
)
from codeagent.sandbox.protocol.errors import NAMED_ERRORS
from codeagent.sandbox.protocol.limits import DEFAULT_MAX_REQUEST_BYTES
from codeagent.sandbox.protocol.tool_specs import unpack_specs as unpack_specs  # used by the host's setup code

_MISSING = inspect.Parameter.empty


def make_stub(client: BridgeClient, spec: dict[str, Any]) -> Callable[..., Any]:
    """A function with the tool's name, signature and docstring that calls it over the bridge.

    ``stub.aio(...)`` takes the same arguments and returns an awaitable.
    """
    name = spec["name"]
    call_name = spec.get("call") or name  # a namespaced (MCP) tool is called as "namespace.name"
    params = [
        inspect.Parameter(
            p["name"],
            getattr(inspect.Parameter, p["kind"]),
            default=_MISSING if p["required"] else p["default"],
            annotation=p["annotation"] or _MISSING,
        )
        for p in spec["params"]
    ]
    signature = inspect.Signature(params, return_annotation=spec.get("returns") or _MISSING)
    head = head_template(op="call", tool=call_name)
    what = f"{call_name}()"
    # Fast path: plain positional/keyword calls of a signature without positional-only or variadic parameters.
    simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
    all_names = [p.name for p in params]
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    defaults = {p.name: p.default for p in params if p.default is not _MISSING}
    name_set = frozenset(all_names)

    def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if simple and len(args) <= len(positional):
            bound = dict(zip(positional, args, strict=False))
            if not kwargs or (kwargs.keys().isdisjoint(bound) and kwargs.keys() <= name_set):
                bound.update(kwargs)
                if len(bound) == len(all_names):
                    return bound
                if all(n in bound or n in defaults for n in all_names):
                    return {n: bound[n] if n in bound else defaults[n] for n in all_names}
        try:
            full = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}(): {e}") from None
        full.apply_defaults()
        return dict(full.arguments)

    def stub(*args: Any, **kwargs: Any) -> Any:
        return client.request(head, arguments(args, kwargs), what)

    async def aio(*args: Any, **kwargs: Any) -> Any:
        return await client.arequest(head, arguments(args, kwargs), what)

    functions: tuple[tuple[Callable[..., Any], str], ...] = ((stub, ""), (aio, ".aio"))
    for f, suffix in functions:
        f.__name__ = name
        f.__qualname__ = call_name + suffix
        f.__doc__ = spec.get("doc") or None
        f.__signature__ = signature  # type: ignore[attr-defined]
        f.__module__ = "tools"
    stub.aio = aio  # type: ignore[attr-defined]
    stub._codeagent_stub = True  # type: ignore[attr-defined]
    return stub


class ToolNamespace:
    """The tools of one MCP server: ``git.git_log(...)``. Attributes are the tools; nothing else is settable.

    A tool's stub is built on first access: a server may bring hundreds of tools, and a script touches few."""

    _name: str
    _specs: dict[str, dict[str, Any]]
    _client: BridgeClient

    def __init__(self, name: str, specs: dict[str, dict[str, Any]], client: BridgeClient) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_specs", dict(specs))
        object.__setattr__(self, "_client", client)

    def __getattr__(self, attr: str) -> Any:  # only called for what is not built yet
        spec = self._specs.get(attr)
        if spec is None:
            closest = "" if attr.startswith("_") else _closest(f"{self._name}.{attr}")
            raise AttributeError(
                f"MCP server {self._name} has no tool {attr[:80]!r}"
                + (f"; the closest: {closest}" if closest else f"; see dir({self._name}) or search_tools()")
            )
        stub = make_stub(self._client, spec)
        object.__setattr__(self, attr, stub)
        return stub

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the tools of {self._name} cannot be replaced")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the tools of {self._name} cannot be removed")

    def __dir__(self) -> list[str]:
        return sorted(self._specs)

    def __repr__(self) -> str:
        return f"<tools of MCP server {self._name}: {', '.join(sorted(self._specs)) or 'none'}>"


def _closest(name: str) -> str:
    """The host's closest tools to a name that does not exist (its ``describe_tool`` error says them), or ""."""
    try:
        describe_tool(name)
    except Exception as e:  # the expected answer is the error; anything else means no hint
        return str(e).partition("Did you mean: ")[2].rstrip("?")
    return ""


def _text_op(op: str, what: str) -> Callable[..., str]:
    def ask(**fields: Any) -> str:
        if _client is None:
            raise BridgeError("the tool bridge is not installed")
        return str(_client.request(head_template(op=op), fields, what))

    return ask


def search_tools(query: str, k: int = 5) -> str:
    """Find tools by what they do: the stubs (signature, docstring, return type) of the best ``k`` matches
    for ``query``. Every tool found is already callable."""
    return _text_op("search", "search_tools()")(query=str(query), k=int(k))


def describe_tool(name: str) -> str:
    """The full stub of one tool, by name (``"git.git_log"`` for a tool of an MCP server)."""
    return _text_op("describe", "describe_tool()")(name=str(name))


for _f in (search_tools, describe_tool):
    _f.__module__ = "tools"

_client: BridgeClient | None = None
_lock_at_install = False
#: What :func:`install` bound in the script's globals, put back before each script (see restore_bindings).
_bindings: dict[str, Any] = {}


def _lock_shared_host(client: BridgeClient) -> None:
    """See :func:`setup`: the client's connections are opened first, then the filter forbids new sockets."""
    global _lock_at_install
    if _lock_at_install:
        from codeagent.sandbox.guest.lockdown import seccomp_filter

        client.open_pool()
        seccomp_filter.lock_shared_host()
        _lock_at_install = False


def install(
    address: str,
    token: str,
    specs: list[dict[str, Any]],
    namespace: dict[str, Any],
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> None:
    """Define every tool, ``set_result`` and ``ToolError`` in ``namespace`` (the script's globals)."""
    global _client
    client = _client
    if client is None or (client.address, client._token) != (address, token.encode()):
        client = _client = _new_client(address, token, max_request_bytes)
        _lock_shared_host(client)
    client.max_request_bytes = max_request_bytes

    def set_result(value: Any) -> None:
        """Hand ``value`` back to the notebook as the result (JSON-like data, a NumPy array, a pandas
        DataFrame/Series or an Arrow table). The last call wins."""
        client.request(head_template(op="result"), value, "set_result()")

    set_result.__module__ = "tools"
    namespace["set_result"] = set_result
    errors: list[type[Exception]] = [ToolError, *NAMED_ERRORS.values()]
    for error in errors:
        namespace[error.__name__] = error
    names = {spec["name"] for spec in specs}
    for name, value in list(namespace.items()):  # stubs of tools that were removed since the last install
        if name not in names and getattr(value, "_codeagent_stub", False):
            del namespace[name]
    namespace["search_tools"] = search_tools
    namespace["describe_tool"] = describe_tool
    for stale in [k for k, v in namespace.items() if isinstance(v, ToolNamespace)]:
        del namespace[stale]
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        if spec.get("namespace"):
            grouped.setdefault(spec["namespace"], {})[spec["name"]] = spec
        else:
            namespace[spec["name"]] = make_stub(client, spec)
    for name, tools in grouped.items():
        namespace[name] = ToolNamespace(name, tools, client)
    plain = [spec["name"] for spec in specs if not spec.get("namespace")]
    _bindings.clear()
    _bindings.update(
        {
            name: namespace[name]
            for name in [*plain, *grouped, "set_result", "search_tools", "describe_tool", *(e.__name__ for e in errors)]
            if name in namespace
        }
    )


def restore_bindings(*_event: Any) -> None:
    """Before each script: put back any tool, namespace or helper an earlier script rebound (``lookup = 5``).
    The host installs the tools only when they change, so without this the next script would find the name
    taken although its prompt lists the tool."""
    namespace = shell.current().user_ns
    for name, value in _bindings.items():
        if namespace.get(name) is not value:
            namespace[name] = value


#: The bridge address of sandboxes behind a gateway: tool calls travel on the kernel's stdin channel.
STDIN_ADDRESS = "stdin:"


def _new_client(address: str, token: str, max_request_bytes: int) -> BridgeClient:
    if address != STDIN_ADDRESS:
        return BridgeClient(address, token, max_request_bytes)
    from codeagent.sandbox.guest import stdin_client

    stdin_client.refuse_script_input()
    return stdin_client.StdinBridgeClient(token, max_request_bytes, stdin_client.kernel_ask())


def load_data(names: list[str], namespace: dict[str, Any]) -> None:
    """Fetch notebook variables handed in with ``--data`` from the host, under the same names."""
    if _client is None:
        raise BridgeError("the tool bridge is not installed")
    for name in names:
        namespace[name] = _client.request(head_template(op="data", name=name), None, f"loading {name}")


class CPUBudgetExceeded(TimeoutError):
    """The script used more CPU time than one script may."""


def setup(cpu_seconds: int, lock_metadata: bool = False) -> None:
    """Per-script CPU budget: before each cell the soft RLIMIT_CPU moves to now + ``cpu_seconds``.

    ``lock_metadata``: the sandbox shares the host's file system (no mount namespace); once :func:`install`
    has opened the bridge's connections, file modes, owners, times and extended attributes cannot be changed
    and no socket can be created (see seccomp_filter.lock_shared_host)."""
    global _lock_at_install
    _lock_at_install = lock_metadata
    import math
    import resource
    import signal

    def on_xcpu(signum: int, frame: Any) -> None:
        raise CPUBudgetExceeded(f"the script used more than {cpu_seconds} s of CPU time")

    def before_cell(*_event: Any) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = math.ceil(usage.ru_utime + usage.ru_stime)  # RLIMIT_CPU counts whole seconds: never shortchange
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = used + cpu_seconds
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    signal.signal(signal.SIGXCPU, on_xcpu)
    get_ipython = shell.current
    get_ipython().events.register("pre_run_cell", before_cell)
    get_ipython().events.register("pre_run_cell", restore_bindings)
    get_ipython().events.register("post_run_cell", leftovers.end_script_threads)
    leftovers.track_executors()
    leave_our_frames_out_of_tracebacks(get_ipython())
    keep_thread_output_with_its_cell()
    leave_address_space_for_data()


def leave_address_space_for_data() -> None:
    """Keep the sandbox's RLIMIT_AS for data: pyarrow's default allocator (mimalloc) reserves over 1 GB of
    address space on first use, the system allocator ~70 MB. (Malloc arenas are capped by the environment.)"""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # read when pyarrow is first imported


def keep_thread_output_with_its_cell() -> None:
    """Threads inherit the context of the cell that started them, so ipykernel tags their output with that
    cell: a thread that outlives its script cannot write into a later script's output (the host drops
    output whose parent is not the running request)."""
    import contextvars
    import threading

    original_start = threading.Thread.start
    if getattr(original_start, "_codeagent", False):
        return

    def start(self: threading.Thread) -> None:
        context = contextvars.copy_context()
        run = self.run
        self.run = lambda: context.run(run)  # type: ignore[method-assign]
        original_start(self)

    start._codeagent = True  # type: ignore[attr-defined]
    threading.Thread.start = start  # type: ignore[method-assign]


def reap_children() -> int:
    """Reap every exited child of the kernel (the host has just killed what the last script started)."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1


def leave_our_frames_out_of_tracebacks(shell: Any) -> None:
    """The traceback the model reads shows the script's frames and the tool's error, not the stub machinery
    of this module (three frames and ~1k characters around a one-line ``KeyError``)."""
    formatter = shell.InteractiveTB
    original = formatter.structured_traceback
    if getattr(original, "_codeagent", False):
        return

    def structured_traceback(etype: Any = None, value: Any = None, tb: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(etype, value, without_frames_of(os.path.dirname(__file__), tb), *args, **kwargs)

    structured_traceback._codeagent = True  # type: ignore[attr-defined]
    formatter.structured_traceback = structured_traceback


def without_frames_of(directory: str, tb: Any) -> Any:
    """The traceback ``tb`` without the entries whose code lives in ``directory`` (relinked in place)."""
    prefix = os.path.join(directory, "")
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(prefix):
            kept.append(tb)
        tb = tb.tb_next
    for entry, following in zip(kept, [*kept[1:], None], strict=True):
        entry.tb_next = following
    return kept[0] if kept else None
