"""Host side of the tool bridge: a Unix stream socket in the sandbox's run directory.

Why not zmq: on this machine a raw zmq DEALER/ROUTER echo over ipc takes 45–170 µs a round trip (its I/O
threads add thread hand-offs), a raw ``AF_UNIX`` echo 10–35 µs (``benchmarks/bridge.py``). Messages are framed by
:mod:`codeagent.sandbox.protocol.codec`. A request is ``[token, head_json, body_json, *buffers]``; a reply is
``[head_json, body_json, *buffers]``. Everything received is untrusted: the token is checked, sizes are
capped before anything is allocated, values are decoded from JSON, raw arrays and Arrow IPC only (never
pickle), and a malformed stream is answered with an error and closed.

The magic's thread polls :meth:`BridgeServer.fileno` (one selector fd covering the listening socket, every
connection and the wake-up pipe of finished async tools) together with the kernel's sockets and calls
:meth:`BridgeServer.serve_pending`. Sync tools run right there, like notebook code; ``async def`` tools run
concurrently on an event loop in a worker thread, and their replies are sent from the magic's thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hmac
import json
import os
import selectors
import socket
import threading
from collections.abc import Coroutine
from typing import Any

from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.limits import DEFAULT_MAX_REPLY_BYTES, DEFAULT_MAX_REQUEST_BYTES, MAX_FRAME_PARTS
from codeagent.sandbox.protocol.messages import BridgeHandler, BridgeRequest, Pending, Reply, error_reply

__all__ = ["BridgeHandler", "BridgeRequest", "BridgeServer", "Pending", "Reply", "error_reply"]

MAX_CONNECTIONS = 64
_SOCKET_BUFFER = 4 * 1024 * 1024


def parse_request(parts: list[Any], token: bytes, expected_cell: str | None) -> BridgeRequest | Reply:
    """A request frame checked (token, head, cell), or the error reply saying why it is refused.

    Shared by the socket bridge and the stdin-channel bridge of gateway sandboxes."""
    if len(parts) < 3:
        return error_reply(None, "ProtocolError", "malformed request: expected token, head and body")
    if not hmac.compare_digest(bytes(parts[0]), token):
        return error_reply(None, "PermissionError", "bad bridge token")
    try:
        head = json.loads(codec.text(parts[1]))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return error_reply(None, "ValueError", "request head is not valid JSON")
    if not isinstance(head, dict):
        return error_reply(None, "ValueError", "request head must be a JSON object")
    req_id = head.get("id")
    if req_id is not None and type(req_id) is not int:
        return error_reply(None, "ValueError", "request id must be an integer")
    cell = head.get("cell")
    if expected_cell is not None and cell is not None and cell != expected_cell:
        return error_reply(
            req_id,
            "PermissionError",
            "this call comes from a script that has already finished (e.g. a thread it left running); "
            "only the running script may call tools",
        )
    return BridgeRequest(head, parts[2], parts[3:])


class _Connection:
    def __init__(self, sock: socket.socket, max_bytes: int) -> None:
        self.sock = sock
        self.decoder = codec.FrameDecoder(max_bytes, MAX_FRAME_PARTS)
        self.outbox: collections.deque[memoryview] = collections.deque()
        self.closing = False  # close once the outbox is flushed
        self.closed = False


class _AsyncRunner:
    """An event loop in a daemon thread for ``async def`` tools."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="codeagent-async-tools", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class BridgeServer:
    """Receives requests from the sandbox runtime on a Unix socket and answers them with a handler."""

    def __init__(
        self,
        path: str,
        token: str,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self.address = path
        self._token = token.encode()
        self.max_request_bytes = max_request_bytes
        self.max_reply_bytes = max_reply_bytes
        self.refused = 0
        #: The msg_id of the script being served; requests naming another cell are refused. This keeps a thread
        #: left behind by an earlier script from running tools in a later one (the stubs send their cell). It is
        #: attribution, not a security boundary: code in the sandbox can read the running cell's id.
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
        self._runner: _AsyncRunner | None = None
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
        """Handle every request and finished async call waiting now; returns how many requests were handled."""
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

    def cancel_pending(self, reason: str = "the script finished before the tool did") -> int:
        """Cancel every async tool call still running (their callers get CancelledError); returns how many."""
        futures = list(self._pending)
        for future in futures:
            future.cancel()
        self._finish_async(reason)
        return len(futures)

    # -- connections -------------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if len(self._connections) >= MAX_CONNECTIONS:
                sock.close()
                self.refused += 1
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            conn = _Connection(sock, self.max_request_bytes)
            self._connections[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Connection, handler: BridgeHandler) -> int:
        handled = 0
        while not conn.closed and not conn.closing:
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
            for parts in messages:
                handled += 1
                self._answer(conn, parts, handler)
            if n < len(space):
                return handled  # drained for now (level-triggered: more data makes the fd ready again)
        return handled

    def _close(self, conn: _Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        self._connections.pop(conn.sock.fileno(), None)
        conn.sock.close()
        conn.outbox.clear()

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
                self._runner = _AsyncRunner()
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
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if outbox else 0)
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
