"""The stub side of the bridge, imported inside the sandbox kernel. Standard library (and the codec) only.

``install(address, token, specs, namespace, max_request_bytes=...)`` defines one function per tool in the
script's namespace, plus ``set_result``, ``ToolError``, ``ToolDenied`` and ``BudgetExceeded``. Calling
``tool(...)`` blocks and returns the value (usable anywhere, including in a cell that also uses ``await``);
``await tool.aio(...)`` is the async form, so ``await asyncio.gather(*[tool.aio(x) for x in xs])`` has all
calls in flight at once. A tool that raised on the host raises here with the same type name and message.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import itertools
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.errors import NAMED_ERRORS
from codeagent.sandbox.protocol.limits import DEFAULT_MAX_REQUEST_BYTES, GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS

#: How long a blocking call polls for its reply before sleeping (a sleeping virtual CPU is slow to wake);
#: only with a second CPU for the host to answer on.
REPLY_SPIN_S = 0.0002 if len(getattr(os, "sched_getaffinity", lambda _: [0, 1])(0)) > 1 else 0.0


class ToolError(Exception):
    """Base of exceptions raised by tools on the host whose type is not a Python built-in."""


class BridgeError(ConnectionError):
    """The tool bridge itself failed (connection lost, protocol error)."""


_error_types: dict[tuple[str, str | None], type[BaseException]] = {}


def error_type(name: str, base: str | None = None) -> type[BaseException]:
    """The built-in exception of that name, or a ToolError subclass carrying the name (and built-in ``base``)."""
    if name in NAMED_ERRORS:  # raised by codeagent itself (ToolDenied, BudgetExceeded)
        return NAMED_ERRORS[name]
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and _takes_a_message(builtin):
        return builtin
    key = (name, base)
    if key not in _error_types:
        safe = name if name.isidentifier() else "ToolError"
        parent = getattr(builtins, base or "", None)
        bases: tuple[type, ...] = (ToolError,)
        if isinstance(parent, type) and issubclass(parent, Exception) and parent is not Exception:
            bases = (ToolError, parent)
        cls = type(safe, bases, {"__module__": "tools"})
        _error_types[key] = cls if _takes_a_message(cls) else type(safe, (ToolError,), {"__module__": "tools"})
    return _error_types[key]


def _takes_a_message(cls: type[BaseException]) -> bool:
    try:
        cls("message")
    except TypeError:
        return False
    return True


def _raise_error(head: dict[str, Any]) -> None:
    raw = head.get("error")
    err: dict[str, Any] = raw if isinstance(raw, dict) else {}
    base = err.get("base") if isinstance(err.get("base"), str) else None
    exc = error_type(str(err.get("type", "ToolError")), base)(str(err.get("message", "")))
    exc._from_tool = True  # type: ignore[attr-defined]  # raised from a complete reply: the stream is fine
    raise exc


class _SyncConnection:
    """A blocking connection owned by one thread (and process)."""

    def __init__(self, address: str) -> None:
        self.pid = os.getpid()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(address)
        except OSError as e:
            self.sock.close()
            raise BridgeError(f"cannot reach the tool bridge: {e}") from None
        self.decoder = codec.FrameDecoder(GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS)
        self.ready: list[list[bytearray]] = []

    def send(self, buffers: list[codec.Buffer]) -> None:
        if len(buffers) == 1:
            self.sock.sendall(buffers[0])
            return
        views = [memoryview(b).cast("B") for b in buffers]
        while views:
            sent = self.sock.sendmsg(views)
            while sent:
                if sent >= views[0].nbytes:
                    sent -= views.pop(0).nbytes
                else:
                    views[0] = views[0][sent:]
                    sent = 0

    def receive(self) -> list[bytearray]:
        if self.ready:
            return self.ready.pop(0)
        decoder = self.decoder
        spin_until = time.perf_counter() + REPLY_SPIN_S
        while True:
            try:
                try:  # a reply usually comes within microseconds: wait awake, then block
                    n = self.sock.recv_into(decoder.want(), 0, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    if time.perf_counter() < spin_until:
                        continue
                    n = self.sock.recv_into(decoder.want())
            except (TimeoutError, ConnectionResetError) as e:
                raise BridgeError(f"the tool bridge closed the connection ({e})") from None
            if n == 0:
                raise BridgeError("the tool bridge closed the connection")
            messages = decoder.advance(n)
            if messages:
                self.ready.extend(messages[1:])
                return messages[0]

    def close(self) -> None:
        self.sock.close()


class _AsyncChannel:
    """One non-blocking connection per event loop; replies are matched to requests by id."""

    def __init__(self, client: BridgeClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.sock: socket.socket | None = None
        self.decoder = codec.FrameDecoder(GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS)
        self.waiting: dict[int, asyncio.Future[list[bytearray]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def request(self, req_id: int, buffers: list[codec.Buffer]) -> list[bytearray]:
        future: asyncio.Future[list[bytearray]] = self.loop.create_future()
        self.waiting[req_id] = future
        try:
            async with self.lock:
                sock = self.sock or await self._connect()
                try:
                    for buffer in buffers:
                        await self.loop.sock_sendall(sock, buffer)
                except BaseException as e:
                    # a message cut short leaves the stream unusable for every call on it
                    self._fail(BridgeError(f"the request was interrupted while being sent ({e!r})"))
                    raise
            if self.reader is None or self.reader.done():
                self.reader = self.loop.create_task(self._read())
            return await future
        finally:
            self.waiting.pop(req_id, None)

    async def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await self.loop.sock_connect(sock, self.client.address)
        except OSError as e:
            sock.close()
            raise BridgeError(f"cannot reach the tool bridge: {e}") from None
        self.sock = sock
        return sock

    async def _read(self) -> None:
        try:
            while self.waiting and self.sock is not None:
                n = await self.loop.sock_recv_into(self.sock, self.decoder.want())
                if n == 0:
                    raise BridgeError("the tool bridge closed the connection")
                for parts in self.decoder.advance(n):
                    head = json.loads(codec.text(parts[0]))
                    if not isinstance(head, dict):
                        raise BridgeError("malformed reply from the tool bridge")
                    if head.get("id") is None:
                        _raise_error(head)
                    future = self.waiting.get(head["id"])
                    if future is not None and not future.done():
                        future.set_result(parts)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._fail(e)

    def _fail(self, error: Exception) -> None:
        """Fail every waiting call and drop the connection (the next call reconnects)."""
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(error)
        if self.reader is not None and self.reader is not asyncio.current_task() and not self.reader.done():
            self.reader.cancel()
        self.reader = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.decoder = codec.FrameDecoder(GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS)


class BridgeClient:
    """Sends requests to the host: one blocking connection per thread, one async connection per event loop."""

    def __init__(self, address: str, token: str, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
        self.address = address
        self._token = token.encode()
        self.max_request_bytes = max_request_bytes
        self._local = threading.local()
        self._ids = itertools.count(1)
        self._cell_of_caller = _cell_reader()
        self._cell_fragment: tuple[Any, bytes] = (None, b"")
        self._channels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncChannel] = (
            weakref.WeakKeyDictionary()
        )

    def _wire(self, head: bytes, value: Any, what: str) -> list[codec.Buffer]:
        """The request on the wire, after checking it can be sent and is within the size limit."""
        try:
            body, buffers = codec.encode(value)
        except codec.UnsendableValueError as e:
            raise TypeError(f"{what}: {e}") from None
        if not buffers and len(body) < 65536:
            return [codec.pack((self._token, head, body))]
        parts: list[codec.Buffer] = [self._token, head, body, *buffers]
        size = codec.message_size(parts)
        if size > self.max_request_bytes:
            raise ValueError(
                f"{what}: the request is {size} bytes, more than the bridge accepts ({self.max_request_bytes} "
                "bytes); send less data per call"
            )
        if len(parts) > MAX_FRAME_PARTS:
            raise ValueError(f"{what}: too many arrays/tables in one call (at most {MAX_FRAME_PARTS - 3})")
        return codec.wire_buffers(parts)

    def _connection(self) -> _SyncConnection:
        conn: _SyncConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.pid != os.getpid():
            conn = self._local.conn = _SyncConnection(self.address)
        return conn

    def _drop(self, conn: _SyncConnection) -> None:
        conn.close()
        self._local.conn = None

    def request(self, template: bytes, value: Any, what: str) -> Any:
        """Send one request and wait for its reply; returns the decoded value or raises the tool's error.

        ``template`` is the request head with ``%d`` for the id (see :func:`head_template`).
        """
        req_id = next(self._ids)
        wire = self._wire(template % (req_id, self._cell()), value, what)
        conn = self._connection()
        ok = codec.ok_head(req_id)
        try:
            try:
                conn.send(wire)
            except (BrokenPipeError, ConnectionResetError):
                conn.sock.settimeout(2.0)  # the host refused and hung up: its reply says why
            while True:
                parts = conn.receive()
                if parts[0] == ok:
                    break
                reply = json.loads(codec.text(parts[0]))
                if reply.get("id") is None:  # refused before it was read as a request
                    self._drop(conn)
                    _raise_error(reply)
                if reply.get("id") == req_id:
                    _raise_error(reply)  # the tool's own exception; the stream is intact
                # anything else answers a call that was interrupted earlier: skip it
        except Exception as e:
            if not getattr(e, "_from_tool", False):
                self._drop(conn)
            raise
        except BaseException:  # interrupted mid-call: the stream position is unknown, start afresh
            self._drop(conn)
            raise
        if len(parts) == 2 and parts[1] == b"null":
            return None
        return codec.decode(parts[1], parts[2:])

    async def arequest(self, template: bytes, value: Any, what: str) -> Any:
        """The async form of :meth:`request`: many may be in flight at once on one connection."""
        loop = asyncio.get_running_loop()
        req_id = next(self._ids)
        wire = self._wire(template % (req_id, self._cell()), value, what)
        channel = self._channels.get(loop)
        if channel is None:
            channel = self._channels[loop] = _AsyncChannel(self, loop)
        parts = await channel.request(req_id, wire)
        if parts[0] != codec.ok_head(req_id):
            _raise_error(json.loads(codec.text(parts[0])))
        return codec.decode(parts[1], parts[2:])

    def call(self, tool: str, args: dict[str, Any]) -> Any:
        return self.request(head_template(op="call", tool=tool), args, f"{tool}()")

    def _cell(self) -> bytes:
        """``,"cell":"<msg_id>"`` of the cell the calling thread or task belongs to (b"" outside a kernel).

        The host serves only calls from the script it is running: a thread left behind by an earlier script
        carries that script's cell (threads inherit the context of the cell that started them).
        """
        cell = self._cell_of_caller()
        cached, fragment = self._cell_fragment
        if cell != cached:
            fragment = b',"cell":' + json.dumps(cell).encode() if isinstance(cell, str) else b""
            self._cell_fragment = (cell, fragment)
        return fragment


def _cell_reader() -> Callable[[], Any]:
    """A function giving the msg_id of the request (cell) the caller's context belongs to, or None."""
    try:
        get_parent = __import__("IPython").get_ipython().kernel.get_parent
    except AttributeError:
        return lambda: None

    def cell() -> Any:
        try:
            return get_parent("shell")["header"]["msg_id"]
        except (KeyError, TypeError, LookupError):
            return None

    return cell


def head_template(**fields: Any) -> bytes:
    """A request head as bytes with ``%d`` for the id and ``%b`` for the cell fragment:
    ``b'{"id":%d%b,"op":"call","tool":"f"}'``."""
    rest = json.dumps(fields, separators=(",", ":"))[1:].replace("%", "%%")
    return b'{"id":%d%b,' + rest.encode() if fields else b'{"id":%d%b}'


_MISSING = inspect.Parameter.empty


def make_stub(client: BridgeClient, spec: dict[str, Any]) -> Callable[..., Any]:
    """A function with the tool's name, signature and docstring that calls it over the bridge.

    ``stub.aio(...)`` takes the same arguments and returns an awaitable.
    """
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
    head = head_template(op="call", tool=name)
    what = f"{name}()"
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
        f.__qualname__ = name + suffix
        f.__doc__ = spec.get("doc") or None
        f.__signature__ = signature  # type: ignore[attr-defined]
        f.__module__ = "tools"
    stub.aio = aio  # type: ignore[attr-defined]
    return stub


_client: BridgeClient | None = None


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
    for spec in specs:
        namespace[spec["name"]] = make_stub(client, spec)


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


def setup(cpu_seconds: int) -> None:
    """Per-script CPU budget: before each cell the soft RLIMIT_CPU moves to now + ``cpu_seconds``."""
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
    get_ipython = __import__("IPython").get_ipython
    get_ipython().events.register("pre_run_cell", before_cell)
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
