"""Registered tools called in the notebook itself, the way the sandbox's stubs call them over the bridge.

Used by cells made with ``%codeagent --cell`` / ``result.to_cell()``, so that they print what the sandbox
printed: a call is bound to the stub's signature, its arguments and its value pass through the bridge's
encoding (JSON, NumPy arrays, Arrow tables: a tuple comes back as a list), and it is served by the same
:class:`~codeagent.tools.dispatch.ToolDispatcher` the bridge uses (the tool's validation and lax coercion,
``"3"`` → ``3``). No approval is asked: running the cell is the person's approval. ``tool(...)`` blocks and
returns the value (an ``async def`` tool runs to completion on a loop of its own); ``await tool.aio(...)`` is
the async form. MCP tools are reached through their namespace: ``notebook_tools("time_mcp").get_current_time``.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import itertools
from typing import Any

from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.messages import BridgeRequest, Pending, Reply
from codeagent.tools.dispatch import ToolDispatcher, run_to_completion
from codeagent.tools.error_text import builtin_base, exception_message
from codeagent.tools.registry import ToolRegistry, default_registry

_MISSING = inspect.Parameter.empty
_ids = itertools.count(1)


class ToolError(Exception):
    """As in the sandbox: the base of exceptions a tool raised whose type is not a Python built-in (a cell's
    ``except ToolError`` catches what the script's caught, and lets a built-in ``TypeError`` through)."""


_error_types: dict[tuple[str, str | None], type[Exception]] = {}


def as_in_sandbox(error: BaseException) -> BaseException:
    """The exception the script saw for ``error``: a built-in as it is; another type as a ToolError subclass of
    that name (and of its nearest built-in base) with the message the sandbox got, caused by ``error``."""
    builtin = getattr(builtins, type(error).__name__, None)
    if builtin is type(error) or not isinstance(error, Exception):
        return error
    name, base = type(error).__name__, builtin_base(error)
    if (name, base) not in _error_types:
        parent = getattr(builtins, base or "", None)
        bases = (ToolError, parent) if isinstance(parent, type) and issubclass(parent, Exception) else (ToolError,)
        try:
            _error_types[name, base] = type(name, bases, {"__module__": "tools"})
        except TypeError:  # a built-in base that cannot be mixed in
            _error_types[name, base] = type(name, (ToolError,), {"__module__": "tools"})
    wrapped = _error_types[name, base](exception_message(error))
    wrapped.__cause__ = error
    return wrapped


class LocalTool:
    """A registered tool (``@tool`` or MCP), callable like its sandbox stub: ``f(...)`` and ``await f.aio(...)``."""

    def __init__(self, tool: Any) -> None:
        self.tool = tool
        self.__name__ = str(getattr(tool, "attr", tool.name))
        self.__qualname__ = tool.name
        self.__doc__ = getattr(tool, "description", None) or None
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(
                    p.name,
                    getattr(inspect.Parameter, p.kind),
                    default=_MISSING if p.required else p.default,
                    annotation=p.annotation or _MISSING,
                )
                for p in tool.params
            ],
            return_annotation=tool.returns or _MISSING,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dispatcher, request = self._request(args, kwargs)
        outcome = dispatcher.begin(request)
        if isinstance(outcome, Pending):
            outcome = outcome.finish(*run_to_completion(outcome.coroutine, self.tool.name))
        return _answer(outcome, dispatcher)

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        dispatcher, request = self._request(args, kwargs)
        outcome = await asyncio.to_thread(dispatcher.begin, request)  # a plain tool runs off the notebook's loop
        if isinstance(outcome, Pending):
            try:
                value, error = await outcome.coroutine, None
            except Exception as e:
                value, error = None, e
            outcome = outcome.finish(value, error)
        return _answer(outcome, dispatcher)

    def _request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ToolDispatcher, BridgeRequest]:
        """The request the stub would send: arguments bound to the stub's signature, encoded as on the wire."""
        name = self.tool.name
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.__name__}(): {e}") from None
        bound.apply_defaults()
        try:
            body, buffers = codec.encode(dict(bound.arguments))
        except codec.UnsendableValueError as e:
            raise TypeError(f"{name}(): {e}") from None
        head = {"id": next(_ids), "op": "call", "tool": name}
        request = BridgeRequest(head, bytes(body), [bytearray(b) for b in buffers])
        return ToolDispatcher({name: self.tool}), request  # type: ignore[arg-type]  # a one-tool registry

    def __repr__(self) -> str:
        return f"<codeagent tool {self.tool.name!r} (run in the notebook)>"


def _answer(reply: Reply, dispatcher: ToolDispatcher) -> Any:
    """The value as the stub decodes it, or the tool's own exception (the sandbox raised one of that name)."""
    if reply.ok:
        return codec.decode(reply.body, [bytearray(b) for b in reply.buffers])
    if dispatcher.last_error is not None:
        raise as_in_sandbox(dispatcher.last_error)
    error = reply.head.get("error") or {}
    kind = getattr(builtins, str(error.get("type")), None)
    kind = kind if isinstance(kind, type) and issubclass(kind, Exception) else RuntimeError
    raise kind(str(error.get("message", "")))


class LocalNamespace:
    """The tools of one MCP server, as the sandbox's ``time_mcp`` namespace: ``ns.tool(...)``."""

    def __init__(self, name: str, tools: dict[str, LocalTool]) -> None:
        self._name = name
        self._tools = tools

    def __getattr__(self, attr: str) -> LocalTool:
        tools = self.__dict__.get("_tools", {})
        if attr in tools:
            return tools[attr]
        raise AttributeError(f"MCP server {self.__dict__.get('_name')!r} has no tool {attr!r}")

    def __dir__(self) -> list[str]:
        return sorted(self._tools)

    def __repr__(self) -> str:
        return f"<tools of MCP server {self._name} (run in the notebook): {', '.join(sorted(self._tools))}>"


def _tool_box(registry: Any) -> Any:
    """Every tool source: ``registry`` (the notebook's ``@tool`` registry by default) and the MCP servers."""
    from codeagent.tools.mcp.servers import default_servers
    from codeagent.tools.toolbox import ToolBox

    box = ToolBox(registry if registry is not None else default_registry, default_servers)
    box.refresh()
    return box


def notebook_tool(name: str, registry: ToolRegistry | None = None) -> LocalTool:
    """The registered tool ``name`` (``"ns.tool"`` for an MCP tool) as a notebook function; a short error if
    there is no such tool."""
    found = (registry if registry is not None else default_registry).get(name)
    if found is None and "." in name:
        found = _tool_box(registry).get(name)
    if found is None:
        raise NameError(f"no tool named {name!r} is registered: run the cell that defines it with @tool first")
    return LocalTool(found)


def notebook_tools(namespace: str, registry: ToolRegistry | None = None) -> LocalNamespace:
    """The tools of the MCP server whose sandbox namespace is ``namespace``, as notebook functions."""
    tools = {t.attr: LocalTool(t) for t in _tool_box(registry) if getattr(t, "namespace", None) == namespace}
    if not tools:
        raise NameError(f"no MCP server has the namespace {namespace!r}: run the cell with add_mcp_server first")
    return LocalNamespace(namespace, tools)
