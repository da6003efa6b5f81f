"""A gateway kernel's channels over one websocket (jupyter_server's JSON protocol).

Each message carries a ``channel`` field (shell, iopub, stdin, control). A reader thread parses incoming messages
into a queue, so the magic's thread waits on one queue with a timeout and never blocks inside the websocket.
Everything received is untrusted: a message that is not a JSON object with a header is counted and dropped.
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

#: Incoming messages waiting for the magic's thread; beyond this the reader blocks (backpressure).
MAX_QUEUED = 10_000
#: Largest incoming websocket message accepted (a flood of output is capped here too).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Message = dict[str, Any]


class KernelChannels:
    """Send requests to a gateway kernel and receive its replies and output."""

    def __init__(self, url: str, headers: list[str], *, timeout: float = 30.0) -> None:
        try:
            self._ws = websocket.create_connection(url, header=headers, timeout=timeout, enable_multithread=True)
        except websocket.WebSocketBadStatusException as e:
            code = getattr(e, "status_code", "?")
            hint = " (check CodeAgent.gateway_token)" if code in (401, 403) else ""
            raise GatewayError(f"the gateway refused the kernel's websocket ({code}){hint}") from None
        except (OSError, websocket.WebSocketException) as e:
            raise GatewayError(f"cannot open the kernel's websocket at the gateway: {e}") from None
        self._ws.settimeout(None)
        # the gateway re-signs every message with the kernel's key; this key only keeps jupyter_client quiet
        self._session = Session(key=secrets.token_bytes(16), username="codeagent")
        self.messages: queue.Queue[Message | None] = queue.Queue(MAX_QUEUED)
        self.dropped = 0
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
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def _read(self) -> None:
        try:
            while True:
                data = self._ws.recv()
                if not data:
                    break
                msg = self._parse(data)
                if msg is None:
                    self.dropped += 1
                    continue
                self.messages.put(msg)
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            self.closed.set()
            with contextlib.suppress(queue.Full):
                self.messages.put_nowait(None)

    @staticmethod
    def _parse(data: str | bytes) -> Message | None:
        if isinstance(data, bytes):
            return None  # the binary protocol is not negotiated; nothing binary is expected
        if len(data) > MAX_MESSAGE_BYTES:
            return None
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
