"""The sandbox's client of the tool bridge: blocking and async requests over the Unix socket, replies matched
to their requests, errors from the host raised as exceptions of the same name. Standard library and protocol only.

Over ~350 lines because the blocking and the async client share one framing, one error mapping and the pooled
connections (:mod:`.bridge_pool`); splitting them would spread one protocol over three files.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from codeagent.sandbox.guest import shell
from codeagent.sandbox.guest.bridge_pool import POOL_SIZE, ConnectionPool, PoolExhausted
from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.errors import NAMED_ERRORS
from codeagent.sandbox.protocol.limits import DEFAULT_MAX_REQUEST_BYTES, GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS
from codeagent.sandbox.protocol.spin import SpinGate

#: How long a blocking call polls for its reply before sleeping (a sleeping virtual CPU is slow to wake);
#: only while the machine has a CPU free for the host to answer on (see ``protocol.spin``).
REPLY_SPIN = SpinGate(0.0002)


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
        self.broken = False

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
        spin_until = time.perf_counter() + REPLY_SPIN.window()
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
        self._pool: ConnectionPool[_SyncConnection] | None = None

    def open_pool(self, size: int = POOL_SIZE) -> None:
        """Open ``size`` connections now and use only those from here on (see :mod:`.bridge_pool`)."""
        self._pool = ConnectionPool(lambda: _SyncConnection(self.address), size)

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
        if self._pool is not None:
            try:
                return self._pool.take()
            except PoolExhausted as e:
                raise BridgeError(str(e)) from None
        conn: _SyncConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.pid != os.getpid():
            conn = self._local.conn = _SyncConnection(self.address)
        return conn

    def _done(self, conn: _SyncConnection) -> None:
        """The call on ``conn`` is over and its stream intact: a pooled connection goes back."""
        if self._pool is not None and not conn.broken:
            self._pool.give_back(conn)

    def _drop(self, conn: _SyncConnection) -> None:
        if conn.broken:
            return
        conn.broken = True
        if self._pool is not None:
            self._pool.lose(conn)
            return
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
            return self._exchange(conn, wire, req_id, ok)
        finally:
            self._done(conn)

    def _exchange(self, conn: _SyncConnection, wire: list[codec.Buffer], req_id: int, ok: bytes) -> Any:
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
        if self._pool is not None:  # no connection of its own: a blocking call on a pooled one, in a thread
            return await asyncio.to_thread(self.request, template, value, what)
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
        get_parent = shell.current().kernel.get_parent
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
