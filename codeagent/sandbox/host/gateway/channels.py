"""A gateway kernel's channels over one websocket (jupyter_server's JSON protocol).

Each message carries a ``channel`` field (shell, iopub, stdin, control). A reader thread parses incoming messages
into a queue, so the magic's thread waits on one queue with a timeout and never blocks inside the websocket.
Everything received is untrusted: a message that is not a JSON object with a header is counted and dropped.
Output (IOPub) is bounded as for local sandboxes (:class:`codeagent.sandbox.host.inbox.IopubBudget`): a message
over ``message_bytes`` is dropped as soon as it is read (websocket-client has no limit before reading), the
running script's output past its budget is dropped, and while the magic's thread is busy (a slow tool) at most
``queued_bytes`` of output wait in the queue; the rest is dropped. Each drop is counted in the budget.
"""

from __future__ import annotations

import contextlib
import json
import queue
import secrets
import threading
from typing import Any

import websocket
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from codeagent.sandbox.host.gateway.rest import GatewayError
from codeagent.sandbox.host.inbox import SMALL_MESSAGE, IopubBudget

#: Incoming messages waiting for the magic's thread; beyond this the reader blocks (backpressure).
MAX_QUEUED = 10_000

Message = dict[str, Any]


class KernelChannels:
    """Send requests to a gateway kernel and receive its replies and output."""

    def __init__(
        self,
        url: str,
        headers: list[str],
        *,
        timeout: float = 30.0,
        budget: IopubBudget | None = None,
        message_bytes: int = 64 << 20,
        queued_bytes: int = 64 << 20,
    ) -> None:
        try:
            self._ws = websocket.create_connection(
                # websocket-client checks UTF-8 in pure Python (~1 s a MB of output); json.loads decodes it anyway
                url,
                header=headers,
                timeout=timeout,
                enable_multithread=True,
                skip_utf8_validation=True,
            )
        except websocket.WebSocketBadStatusException as e:
            code = getattr(e, "status_code", "?")
            hint = " (check CodeAgent.gateway_token)" if code in (401, 403) else ""
            raise GatewayError(f"the gateway refused the kernel's websocket ({code}){hint}") from None
        except (OSError, websocket.WebSocketException) as e:
            raise GatewayError(f"cannot open the kernel's websocket at the gateway: {e}") from None
        self._ws.settimeout(None)
        # the gateway re-signs every message with the kernel's key; this key only keeps jupyter_client quiet
        self._session = Session(key=secrets.token_bytes(16), username="codeagent")
        self.messages: queue.Queue[tuple[Message, int] | None] = queue.Queue(MAX_QUEUED)
        self.dropped = 0
        self.budget = budget or IopubBudget(1 << 62)
        self.message_bytes, self.queued_bytes = message_bytes, queued_bytes
        self._queued = 0  # bytes of output in the queue (written by the reader, read by get)
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="codeagent-gateway-ws", daemon=True)
        self._reader.start()

    def send(self, channel: str, msg_type: str, content: dict[str, Any], parent: Message | None = None) -> Message:
        """Send one message; returns it (its ``header.msg_id`` identifies the replies)."""
        msg = self._session.msg(msg_type, content=content, parent=parent or {})
        wire = {**msg, "channel": channel, "buffers": []}
        try:
            self._ws.send(json.dumps(wire, default=json_default))
        except (OSError, websocket.WebSocketException) as e:
            raise GatewayError(f"lost the kernel's websocket at the gateway: {e}") from None
        return msg

    def get(self, timeout: float) -> Message | None:
        """The next message, or None after ``timeout`` seconds (or when the websocket is closed)."""
        try:
            item = self.messages.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            return None
        msg, size = item
        with self._lock:
            self._queued -= size
        return msg

    def _read(self) -> None:
        try:
            while True:
                try:
                    data = self._ws.recv()
                except UnicodeDecodeError:  # not validated while read (see __init__): a frame of bad UTF-8
                    self.dropped += 1
                    continue
                if not data:
                    break
                if len(data) > self.message_bytes:
                    self.budget.counts[f"output messages over {self.message_bytes >> 20} MiB"] += 1
                    continue
                msg = self._parse(data)
                if msg is None:
                    self.dropped += 1
                    continue
                size = len(data) if msg.get("channel") == "iopub" else 0
                if size and not self._room_for(size):
                    continue
                self.messages.put((msg, size))
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            self.closed.set()
            with contextlib.suppress(queue.Full):
                self.messages.put_nowait(None)

    def _room_for(self, size: int) -> bool:
        """Charge one output message to the script's budget and the queue's; False (counted) to drop it."""
        if not self.budget.admit(size):
            return False
        with self._lock:
            if self._queued + size > self.queued_bytes and size > SMALL_MESSAGE:
                self.budget.counts[f"output messages past {self.queued_bytes >> 20} MiB queued"] += 1
                return False
            self._queued += size
        return True

    @staticmethod
    def _parse(data: str | bytes) -> Message | None:
        if isinstance(data, bytes):
            return None  # the binary protocol is not negotiated; nothing binary is expected
        try:
            msg = json.loads(data)
        except ValueError:
            return None
        if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
            return None
        if not isinstance(msg.get("content"), dict) or not isinstance(msg.get("parent_header", {}), dict):
            return None
        return msg

    def close(self) -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self._ws.close()
        self._reader.join(timeout=2)
