"""The stub side of the bridge, imported inside the sandbox kernel. Standard library and zmq only.

``install(address, token, specs, namespace)`` defines one plain function per tool in the script's namespace.
Each call sends JSON over a zmq DEALER socket and blocks for the reply; a tool that raised on the host raises
here with the same type name and message.
"""

from __future__ import annotations

import builtins
import inspect
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import zmq


class ToolError(Exception):
    """Base of exceptions raised by tools on the host whose type is not a Python built-in."""


_error_types: dict[str, type[BaseException]] = {}


def error_type(name: str) -> type[BaseException]:
    """The built-in exception of that name, or a ToolError subclass carrying the name."""
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        return builtin
    if name not in _error_types:
        safe = name if name.isidentifier() else "ToolError"
        _error_types[name] = type(safe, (ToolError,), {"__module__": "tools"})
    return _error_types[name]


class BridgeClient:
    """One DEALER socket per thread, so threads may call tools concurrently."""

    def __init__(self, address: str, token: str) -> None:
        self.address = address
        self._token = token.encode()
        self._context = zmq.Context.instance()
        self._local = threading.local()
        self._ids = itertools.count(1)

    def _socket(self) -> zmq.Socket[Any]:
        sock = getattr(self._local, "socket", None)
        if sock is None:
            sock = self._context.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(self.address)
            self._local.socket = sock
        return sock

    def call(self, tool: str, args: dict[str, Any]) -> Any:
        req_id = next(self._ids)
        try:
            body = json.dumps({"id": req_id, "tool": tool, "args": args}).encode()
        except (TypeError, ValueError) as e:
            raise TypeError(f"{tool}(): arguments must be JSON-like data ({e})") from None
        sock = self._socket()
        sock.send_multipart([self._token, body])
        frames = sock.recv_multipart()
        reply = json.loads(frames[0])
        if not reply.get("ok"):
            err = reply.get("error", {})
            raise error_type(str(err.get("type", "ToolError")))(str(err.get("message", "")))
        return json.loads(frames[1]) if len(frames) > 1 else None


_MISSING = inspect.Parameter.empty


def make_stub(client: BridgeClient, spec: dict[str, Any]) -> Callable[..., Any]:
    """A function with the tool's name, signature and docstring that calls it over the bridge."""
    name = spec["name"]
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

    def stub(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}(): {e}") from None
        bound.apply_defaults()
        return client.call(name, dict(bound.arguments))

    stub.__name__ = stub.__qualname__ = name
    stub.__doc__ = spec.get("doc") or None
    stub.__signature__ = signature  # type: ignore[attr-defined]
    stub.__module__ = "tools"
    return stub


def install(address: str, token: str, specs: list[dict[str, Any]], namespace: dict[str, Any]) -> None:
    """Define every tool in ``namespace`` (the script's globals)."""
    client = BridgeClient(address, token)
    for spec in specs:
        namespace[spec["name"]] = make_stub(client, spec)
    namespace["ToolError"] = ToolError


class CPUBudgetExceeded(TimeoutError):
    """The script used more CPU time than one script may."""


def setup(cpu_seconds: int) -> None:
    """Per-script CPU budget: before each cell the soft RLIMIT_CPU moves to now + ``cpu_seconds``."""
    import resource
    import signal

    def on_xcpu(signum: int, frame: Any) -> None:
        raise CPUBudgetExceeded(f"the script used more than {cpu_seconds} s of CPU time")

    def before_cell(*_: Any) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = used + cpu_seconds
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    signal.signal(signal.SIGXCPU, on_xcpu)
    get_ipython = __import__("IPython").get_ipython
    get_ipython().events.register("pre_run_cell", before_cell)
