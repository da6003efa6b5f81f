"""Host side of the stdin-channel bridge: answer tool calls that arrive as ``input_request`` prompts.

The same checks as the socket bridge (:func:`codeagent.sandbox.host.request_checks.parse_request`: token, JSON head, the
running cell) and the same handler (``ToolDispatcher.begin``). ``async def`` tools of one batch run concurrently
on the bridge's worker loop; the batch is answered once all of them are done.
"""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

from codeagent.sandbox.host.async_tools import AsyncToolRunner
from codeagent.sandbox.host.request_checks import parse_request
from codeagent.sandbox.protocol import codec, stdin_frames
from codeagent.sandbox.protocol.limits import MAX_FRAME_PARTS
from codeagent.sandbox.protocol.messages import BridgeHandler, Pending, Reply, error_reply


class StdinBridge:
    """Turns one bridge prompt into the ``input_reply`` value that answers it."""

    def __init__(self, token: str, *, max_request_bytes: int, max_reply_bytes: int) -> None:
        self._token = token.encode()
        self.max_request_bytes = max_request_bytes
        self.max_reply_bytes = max_reply_bytes
        self.expected_cell: str | None = None
        self.refused = 0
        self.calls = 0
        self.prompts = 0  # input_requests answered (a batch of async calls is one)
        self._chunks: dict[str, list[str]] = {}  # replies too large for one input_reply, by nonce
        self._runner: AsyncToolRunner | None = None

    def answer(self, prompt: str, handler: BridgeHandler) -> str:
        """The ``input_reply`` value for a bridge prompt (a reply chunk, or a refusal the stub raises)."""
        self.prompts += 1
        if prompt.startswith(stdin_frames.MORE):
            return self._more(prompt)
        # 4/3 for base64 plus the prefix and nonce
        limit = self.max_request_bytes * 4 // 3 + 256
        try:
            nonce, data = stdin_frames.parse_request(prompt, limit)
            messages = stdin_frames.split_messages(data, self.max_request_bytes, MAX_FRAME_PARTS)
        except (stdin_frames.StdinFrameError, codec.ProtocolError) as e:
            self.refused += 1
            nonce = _nonce_of(prompt)
            return self._reply(nonce, [error_reply(None, "ProtocolError", f"malformed bridge request: {e}")])
        return self._reply(nonce, self._serve(messages, handler))

    def _serve(self, messages: list[list[Any]], handler: BridgeHandler) -> list[Reply]:
        replies: list[Reply | None] = []
        waiting: dict[concurrent.futures.Future[Any], tuple[int, Any, Pending]] = {}
        for parts in messages:
            request = parse_request(parts, self._token, self.expected_cell)
            if isinstance(request, Reply):
                self.refused += 1
                replies.append(request)
                continue
            self.calls += 1
            try:
                outcome = handler.begin(request)
            except Exception as e:  # the handler never should, but the host must survive anything
                outcome = error_reply(request.id, "RuntimeError", f"the tool bridge failed: {e}")
            if isinstance(outcome, Pending):
                if self._runner is None:
                    self._runner = AsyncToolRunner()
                waiting[self._runner.submit(outcome.coroutine)] = (len(replies), request.id, outcome)
                replies.append(None)
            else:
                replies.append(outcome)
        for future, (index, req_id, pending) in waiting.items():
            try:
                value, error = future.result(), None
            except BaseException as e:
                value, error = None, e
            try:
                replies[index] = pending.finish(value, error)
            except Exception as e:
                replies[index] = error_reply(req_id, "RuntimeError", f"the tool bridge failed: {e}")
        return [r for r in replies if r is not None]

    def cancel_pending(self) -> None:
        """Nothing stays pending between prompts: every batch is answered whole."""

    def _reply(self, nonce: str, replies: list[Reply]) -> str:
        wire: list[bytes] = []
        for reply in replies:
            if reply.nbytes > self.max_reply_bytes:
                reply = error_reply(
                    reply.head.get("id"),
                    "ValueError",
                    f"the reply of {reply.nbytes} bytes exceeds the bridge limit of {self.max_reply_bytes} bytes "
                    "(SandboxPolicy.bridge_reply_mb); return less data",
                )
            head, req_id = reply.head, reply.head.get("id")
            ok = head.get("ok") is True and len(head) == 2 and isinstance(req_id, int)
            head_bytes = codec.ok_head(req_id) if ok and isinstance(req_id, int) else json.dumps(head).encode()
            parts = [head_bytes, reply.body, *reply.buffers]
            wire.append(stdin_frames.join(codec.wire_buffers(parts, join_below=0)))
        chunks = stdin_frames.reply_chunks(nonce, b"".join(wire))
        if len(chunks) > 1:
            self._chunks = {nonce: chunks}  # one call in flight at a time: older leftovers are dropped
        return chunks[0]

    def _more(self, prompt: str) -> str:
        try:
            nonce, index = stdin_frames.parse_more(prompt)
            return self._chunks[nonce][index]
        except (stdin_frames.StdinFrameError, KeyError, IndexError):
            self.refused += 1
            return "refused:0:0:"

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        self._chunks.clear()


def _nonce_of(prompt: str) -> str:
    nonce = prompt[len(stdin_frames.REQUEST) :].partition(":")[0]
    return nonce if nonce.isalnum() and len(nonce) <= 64 else "0"
