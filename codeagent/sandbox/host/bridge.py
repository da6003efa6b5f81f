"""Host side of the tool bridge: a Unix stream socket in the sandbox's run directory.

Why not zmq: on this machine a raw zmq DEALER/ROUTER echo over ipc takes 45–170 µs a round trip (its I/O
threads add thread hand-offs), a raw ``AF_UNIX`` echo 10–35 µs (``benchmarks/bridge.py``). Messages are framed by
:mod:`codeagent.sandbox.protocol.codec`. A request is ``[token, head_json, body_json, *buffers]``; a reply is
``[head_json, body_json, *buffers]``. Everything received is untrusted: the token is checked, sizes are
capped before anything is allocated, values are decoded from JSON, raw arrays and Arrow IPC only (never
pickle), and a malformed stream is answered with an error and closed.

Limits that hold under any script: one request's size; the request bytes held over all connections (a frame is
charged in full when its header arrives, before anything is allocated); the number of connections; the unsent
reply bytes per connection (past that the host stops reading that connection until the sandbox reads: a script
that pipelines calls and never reads its replies stalls itself, not the host); and the work done per
:meth:`BridgeServer.serve_pending` (a bounded number of reads and accepts, so a socket kept full never keeps the
caller from checking its wall clock). Every refusal is counted in :attr:`BridgeServer.counts`.

The magic's thread polls :meth:`BridgeServer.fileno` (one selector fd covering the listening socket, every
connection and the wake-up pipe of finished async tools) together with the kernel's sockets and calls
:meth:`BridgeServer.serve_pending`. Sync tools run right there, like notebook code; ``async def`` tools run
concurrently on an event loop in a worker thread, and their replies are sent from the magic's thread.

Longer than most modules (~400 lines) for a reason: it is one selector loop, and accepting, reading, pausing,
answering and flushing all share its connection table and its byte budget. What both bridges (this one and the
gateway's stdin bridge) share lives beside it: ``request_checks.py`` (the request's token, head and cell) and
``async_tools.py`` (the event loop of ``async def`` tools).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import json
import os
import selectors
import socket
from typing import Any

from codeagent.sandbox.host.async_tools import AsyncToolRunner
from codeagent.sandbox.host.request_checks import CELL_REFUSALS, parse_request
from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.limits import DEFAULT_MAX_REPLY_BYTES, DEFAULT_MAX_REQUEST_BYTES, MAX_FRAME_PARTS
from codeagent.sandbox.protocol.messages import BridgeHandler, BridgeRequest, Pending, Reply, error_reply

__all__ = [
    "CELL_REFUSALS",
    "BridgeHandler",
    "BridgeRequest",
    "BridgeServer",
    "Pending",
    "Reply",
    "error_reply",
    "parse_request",
]

DEFAULT_MAX_BUFFERED_BYTES = 320 * 1024 * 1024
DEFAULT_MAX_QUEUED_REPLY_BYTES = 16 * 1024 * 1024
MAX_CONNECTIONS = 32
#: Reads per connection and accepts per :meth:`BridgeServer.serve_pending` (then the caller's loop runs again).
READS_PER_TURN = 32
ACCEPTS_PER_TURN = 16
_SOCKET_BUFFER = 4 * 1024 * 1024
PAUSED = "reads paused for unread replies"


class _Connection:
    def __init__(self, sock: socket.socket, max_bytes: int) -> None:
        self.sock = sock
        self.decoder = codec.FrameDecoder(max_bytes, MAX_FRAME_PARTS)
        self.outbox: collections.deque[memoryview] = collections.deque()
        self.queued = 0  # bytes in the outbox
        self.reserved = 0  # bytes of the request being received, charged to the server's buffer budget
        self.closing = False  # close once the outbox is flushed
        self.closed = False


class BridgeServer:
    """Receives requests from the sandbox runtime on a Unix socket and answers them with a handler."""

    def __init__(
        self,
        path: str,
        token: str,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        max_queued_reply_bytes: int = DEFAULT_MAX_QUEUED_REPLY_BYTES,
    ) -> None:
        self.address = path
        self._token = token.encode()
        self.max_request_bytes = max_request_bytes
        self.max_reply_bytes = max_reply_bytes
        self.max_buffered_bytes = max(max_buffered_bytes, max_request_bytes)
        self.max_connections = max_connections
        self.max_queued_reply_bytes = max_queued_reply_bytes
        self.refused = 0
        #: What the limits stopped, by kind (connections refused, requests refused, reads paused, ...).
        self.counts: collections.Counter[str] = collections.Counter()
        self.buffered = 0  # request bytes charged over all connections
        #: The msg_id of the script being served; requests naming another cell are refused. This keeps a thread
        #: left behind by an earlier script from running tools in a later one (the stubs send their cell). It is
        #: attribution, not a security boundary: code in the sandbox can read the running cell's id. Once set,
        #: a request without a cell is refused too.
        self.expected_cell: str | None = None
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        # The run directory (0700) guards access; the sandbox may run as another uid that must connect.
        os.chmod(path, 0o666)
        self._listener.listen(16)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        if not hasattr(self._selector, "fileno"):
            raise RuntimeError("the tool bridge needs epoll or kqueue")
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._connections: dict[int, _Connection] = {}
        self._runner: AsyncToolRunner | None = None
        self._pending: dict[concurrent.futures.Future[Any], tuple[_Connection, Any, Pending]] = {}
        self._finished: collections.deque[concurrent.futures.Future[Any]] = collections.deque()

    def fileno(self) -> int:
        """One fd that is readable whenever :meth:`serve_pending` has work (poll it with the kernel's sockets)."""
        return self._selector.fileno()

    @property
    def pending_calls(self) -> int:
        """Async tool calls still running."""
        return len(self._pending)

    def serve_pending(self, handler: BridgeHandler, timeout: float = 0) -> int:
        """Handle requests and finished async calls waiting now (a bounded amount of work; call again while
        :meth:`fileno` is readable); returns how many requests were handled."""
        handled = 0
        for key, mask in self._selector.select(timeout):
            if key.data is None:
                self._accept()
            elif key.data == "wake":
                self._drain_wake()
                self._finish_async()
            else:
                conn: _Connection = key.data
                if mask & selectors.EVENT_WRITE:
                    self._flush(conn)
                if mask & selectors.EVENT_READ and not conn.closed:
                    handled += self._read(conn, handler)
        return handled  # anything that arrived meanwhile keeps the selector fd readable for the next poll

    def end_call(self) -> int:
        """The script ended: hang up on connections left halfway through a request (they would hold the buffer
        budget against the next script); returns how many."""
        partial = [c for c in self._connections.values() if c.reserved or c.decoder.in_message]
        for conn in partial:
            self._close(conn)
        self.counts["half-sent requests dropped at the end of the script"] += len(partial)
        return len(partial)

    def cancel_pending(self, reason: str = "the script finished before the tool did") -> int:
        """Cancel every async tool call still running (their callers get CancelledError); returns how many."""
        futures = list(self._pending)
        for future in futures:
            future.cancel()
        self._finish_async(reason)
        return len(futures)

    # -- connections -------------------------------------------------------------------------------

    def open_connections(self) -> int:
        """Connections the sandbox has not hung up (checked now, without reading any request; those a fresh
        kernel made and the host did not accept yet are accepted first)."""
        self._accept()
        for conn in list(self._connections.values()):
            try:
                hung_up = conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except (BlockingIOError, InterruptedError):
                hung_up = False
            except OSError:
                hung_up = True
            if hung_up:
                self._close(conn)
        return len(self._connections)

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. EMFILE: the host is short of descriptors; leave it in the backlog
                self.counts["accept failed"] += 1
                return
            if len(self._connections) >= self.max_connections:
                sock.close()
                self.refused += 1
                self.counts["connections refused"] += 1
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            conn = _Connection(sock, self.max_request_bytes)
            conn.decoder.reserve = functools.partial(self._reserve, conn)
            self._connections[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _reserve(self, conn: _Connection, size: int) -> None:
        """Charge a request announced by its header to the buffer budget, before its bytes are taken in
        (a decoder receives one message at a time: a new header means the previous message is complete)."""
        self._release(conn)
        if size and self.buffered + size > self.max_buffered_bytes:
            self.counts["requests over the buffer budget"] += 1
            raise codec.ProtocolError(
                f"the host is already holding {self.buffered} bytes of requests; a request of {size} bytes would "
                f"pass the limit of {self.max_buffered_bytes} bytes (SandboxPolicy.bridge_buffer_mb): send less "
                "data at once"
            )
        conn.reserved += size
        self.buffered += size

    def _release(self, conn: _Connection) -> None:
        self.buffered -= conn.reserved
        conn.reserved = 0

    def _read(self, conn: _Connection, handler: BridgeHandler) -> int:
        handled = 0
        for _ in range(READS_PER_TURN):
            if conn.closed or conn.closing:
                return handled
            if conn.queued >= self.max_queued_reply_bytes:
                self._pause(conn)  # the sandbox is not reading its replies: read no more requests from it
                return handled
            space = conn.decoder.want()
            try:
                n = conn.sock.recv_into(space)
            except (BlockingIOError, InterruptedError):
                return handled
            except OSError:
                self._close(conn)
                return handled
            if n == 0:
                self._close(conn)
                return handled
            try:
                messages = conn.decoder.advance(n)
            except codec.ProtocolError as e:
                kind = "ValueError" if isinstance(e, codec.MessageTooLarge) else "ProtocolError"
                self._refuse_and_close(conn, kind, str(e))
                return handled
            if conn.reserved and not conn.decoder.in_message:
                self._release(conn)
            for parts in messages:
                handled += 1
                self._answer(conn, parts, handler)
            if n < len(space):
                return handled  # drained for now (level-triggered: more data makes the fd ready again)
        return handled  # more may be waiting: the fd stays readable, the caller's loop comes back

    def _pause(self, conn: _Connection) -> None:
        self.counts[PAUSED] += 1
        self._watch(conn)

    def _close(self, conn: _Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        self._connections.pop(conn.sock.fileno(), None)
        conn.sock.close()
        conn.outbox.clear()
        conn.queued = 0
        self._release(conn)

    def _refuse_and_close(self, conn: _Connection, type_name: str, message: str) -> None:
        """The stream can no longer be trusted: say why, then hang up."""
        self.refused += 1
        self._send(conn, error_reply(None, type_name, message))
        conn.closing = True
        if not conn.outbox:
            self._close(conn)

    # -- requests ----------------------------------------------------------------------------------

    def _answer(self, conn: _Connection, parts: list[bytearray], handler: BridgeHandler) -> None:
        request = self._parse(parts)
        if isinstance(request, Reply):
            self._send(conn, request)
            return
        try:
            outcome = handler.begin(request)
        except Exception as e:  # the handler never should, but the host must survive anything
            outcome = error_reply(request.id, "RuntimeError", f"the tool bridge failed: {e}")
        if isinstance(outcome, Pending):
            if self._runner is None:
                self._runner = AsyncToolRunner()
            future = self._runner.submit(outcome.coroutine)
            self._pending[future] = (conn, request.id, outcome)
            future.add_done_callback(self._on_async_done)
        else:
            self._send(conn, outcome)

    def _parse(self, parts: list[bytearray]) -> BridgeRequest | Reply:
        """The request, or an error reply when it is malformed or unauthenticated."""
        request = parse_request(parts, self._token, self.expected_cell)
        if isinstance(request, Reply):
            self.refused += 1
            if request.head.get("error", {}).get("message", "").startswith(CELL_REFUSALS):
                self.counts["requests from another script or without a cell id"] += 1
        return request

    def _on_async_done(self, future: concurrent.futures.Future[Any]) -> None:
        """Runs on the worker thread (or the canceller's): hand the result to the magic's thread."""
        self._finished.append(future)
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    def _finish_async(self, cancel_reason: str = "the tool call was cancelled") -> None:
        while self._finished:
            future = self._finished.popleft()
            entry = self._pending.pop(future, None)
            if entry is None:
                continue
            conn, req_id, pending = entry
            if future.cancelled():
                error: BaseException | None = asyncio.CancelledError(cancel_reason)
                value = None
            else:
                error = future.exception()
                value = None if error is not None else future.result()
            try:
                reply = pending.finish(value, error)
            except Exception as e:
                reply = error_reply(req_id, "RuntimeError", f"the tool bridge failed: {e}")
            if not conn.closed:
                self._send(conn, reply)

    # -- replies -----------------------------------------------------------------------------------

    def _send(self, conn: _Connection, reply: Reply) -> None:
        if reply.nbytes > self.max_reply_bytes:
            reply = error_reply(
                reply.head.get("id"),
                "ValueError",
                f"the reply of {reply.nbytes} bytes exceeds the bridge limit of {self.max_reply_bytes} bytes "
                "(CodeAgent.bridge_reply_mb); return less data",
            )
        head = reply.head
        req_id = head.get("id")
        if head.get("ok") is True and len(head) == 2 and type(req_id) is int:
            head_bytes = codec.ok_head(req_id)
        else:
            head_bytes = json.dumps(head).encode()
        if not reply.buffers and len(reply.body) < 65536:
            wire: list[codec.Buffer] = [codec.pack((head_bytes, reply.body))]
        else:
            wire = codec.wire_buffers([head_bytes, reply.body, *reply.buffers])
        if len(wire) == 1 and not conn.outbox:  # the common case: one small reply, nothing queued
            try:
                sent = conn.sock.send(wire[0])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            if sent == len(wire[0]):
                if conn.closing:
                    self._close(conn)
                return
            wire = [memoryview(wire[0])[sent:]]
        for buffer in wire:
            view = memoryview(buffer).cast("B")
            if view.nbytes:
                conn.outbox.append(view)
                conn.queued += view.nbytes
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        outbox = conn.outbox
        while outbox:
            try:
                sent = conn.sock.sendmsg(list(outbox)[:64])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            conn.queued -= sent
            while sent and outbox:
                first = outbox[0]
                if sent >= first.nbytes:
                    sent -= first.nbytes
                    outbox.popleft()
                else:
                    outbox[0] = first[sent:]
                    sent = 0
        if conn.closed:
            return
        if not outbox and conn.closing:
            self._close(conn)
            return
        self._watch(conn)

    def _watch(self, conn: _Connection) -> None:
        """Wait for writability while replies are queued; for requests only while the queue is short."""
        reading = conn.queued < self.max_queued_reply_bytes and not conn.closing
        events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if conn.outbox else 0)
        if not events:
            events = selectors.EVENT_READ  # nothing queued and closing: notice the hang-up
        if self._selector.get_key(conn.sock).events != events:
            self._selector.modify(conn.sock, events, conn)

    def close(self) -> None:
        if self._runner is not None:
            for future in list(self._pending):
                future.cancel()
            self._runner.close()
            self._runner = None
        self._pending.clear()
        for conn in list(self._connections.values()):
            self._close(conn)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._listener)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
