"""The stub side of the bridge for gateway sandboxes: tool calls travel on the kernel's stdin channel.

Each call is one ``input_request`` through ipykernel's own ``raw_input`` (the execute request allows stdin), so
it works through any Jupyter Kernel / Enterprise Gateway without a socket of our own. One call is in flight at
a time; ``await asyncio.gather(*[t.aio(x) for x in xs])`` sends every call queued in the same event-loop turn as
one batch. The script's own ``input()`` is refused (see :func:`refuse_script_input`), so only the stubs talk on
this channel.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import threading
from collections.abc import Callable
from typing import Any

from codeagent.sandbox.guest import shell
from codeagent.sandbox.guest.bridge_client import BridgeClient, BridgeError, _raise_error
from codeagent.sandbox.protocol import codec, stdin_frames
from codeagent.sandbox.protocol.limits import GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS

Ask = Callable[[str], str]


class StdinBridgeClient(BridgeClient):
    """A :class:`BridgeClient` whose requests are ``input_request`` prompts answered by the host."""

    def __init__(self, token: str, max_request_bytes: int, ask: Ask) -> None:
        super().__init__("stdin:", token, max_request_bytes)
        self._ask = ask
        self._lock = threading.Lock()
        self._queued: list[tuple[int, bytes, asyncio.Future[list[Any]]]] = []
        self._flush_scheduled = False

    def _ask_host(self, data: bytes) -> list[list[Any]]:
        nonce = os.urandom(8).hex()
        with self._lock:
            try:
                count, piece = stdin_frames.parse_reply_chunk(
                    self._ask(stdin_frames.request_prompt(nonce, data)), nonce, 0
                )
                pieces = [piece]
                for index in range(1, count):
                    _, piece = stdin_frames.parse_reply_chunk(
                        self._ask(stdin_frames.more_prompt(nonce, index)), nonce, index
                    )
                    pieces.append(piece)
            except EOFError:
                raise BridgeError("the tool bridge (stdin channel) was closed") from None
            except stdin_frames.StdinFrameError as e:
                raise BridgeError(str(e)) from None
        try:
            return stdin_frames.split_messages(
                stdin_frames.decode_pieces(pieces), GUEST_MAX_REPLY_BYTES, MAX_FRAME_PARTS
            )
        except (codec.ProtocolError, stdin_frames.StdinFrameError) as e:
            raise BridgeError(f"malformed reply from the tool bridge: {e}") from None

    def request(self, template: bytes, value: Any, what: str) -> Any:
        req_id = next(self._ids)
        wire = self._wire(template % (req_id, self._cell()), value, what)
        replies = self._ask_host(stdin_frames.join(wire))
        if not replies:
            raise BridgeError("empty reply from the tool bridge")
        return _value_of(req_id, replies[0])

    async def arequest(self, template: bytes, value: Any, what: str) -> Any:
        loop = asyncio.get_running_loop()
        req_id = next(self._ids)
        wire = self._wire(template % (req_id, self._cell()), value, what)
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queued.append((req_id, stdin_frames.join(wire), future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return _value_of(req_id, await future)

    def _flush(self) -> None:
        """Send every call queued in this loop turn as one batch (runs as a loop callback)."""
        batch, self._queued, self._flush_scheduled = self._queued, [], False
        if not batch:
            return
        try:
            replies = self._ask_host(b"".join(data for _, data, _ in batch))
        except BaseException as e:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else BridgeError(repr(e)))
            return
        by_id: dict[Any, list[Any]] = {}
        for parts in replies:
            try:
                head = json.loads(codec.text(parts[0]))
            except ValueError:
                continue
            if isinstance(head, dict):
                by_id[head.get("id")] = parts
        for req_id, _, future in batch:
            found = by_id.get(req_id) or by_id.get(None)
            if future.done():
                continue
            if found is None:
                future.set_exception(BridgeError("the tool bridge sent no reply for this call"))
            else:
                future.set_result(found)


def _value_of(req_id: int, parts: list[Any]) -> Any:
    if parts[0] == codec.ok_head(req_id):
        if len(parts) == 2 and parts[1] == b"null":
            return None
        return codec.decode(parts[1], parts[2:])
    _raise_error(json.loads(codec.text(parts[0])))


def kernel_ask() -> Ask:
    """ipykernel's ``raw_input`` of this kernel (sends ``input_request`` for the running cell)."""
    try:
        kernel = shell.current().kernel
    except AttributeError:
        raise BridgeError("the stdin bridge needs to run inside an ipykernel") from None
    raw_input: Ask = kernel.raw_input
    return raw_input


def refuse_script_input() -> None:
    """Before every cell (after ipykernel has pointed ``input`` at the stdin channel), refuse ``input()`` and
    ``getpass``: the stdin channel belongs to the tool stubs."""

    def refused(*_: Any, **__: Any) -> str:
        raise RuntimeError("input() is not available in the sandbox: nobody can answer it")

    def before_cell(*_: Any) -> None:
        builtins.input = refused
        try:
            import getpass

            getpass.getpass = refused
        except ImportError:
            pass

    events = shell.current().events
    if not any(getattr(cb, "_codeagent_stdin", False) for cb in events.callbacks.get("pre_run_cell", [])):
        before_cell._codeagent_stdin = True  # type: ignore[attr-defined]
        events.register("pre_run_cell", before_cell)
    before_cell()
