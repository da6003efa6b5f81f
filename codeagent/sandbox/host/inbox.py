"""Messages from the sandbox kernel's zmq sockets, taken in without trusting them.

The sandbox holds its kernel's session key, so anything may arrive on IOPub and the shell channel: frames
that are not a Jupyter message, a bad or replayed signature, a flood. ``jupyter_client`` raises on the first
two (``ValueError: Invalid Signature`` / ``Duplicate Signature``), which would end the call without its trace.
Here each message is sized first, then deserialised inside a ``try``; whatever is wrong is counted and dropped.
"""

from __future__ import annotations

import collections
from typing import Any

import zmq

#: A message at most this big is still read after the call's IOPub budget is spent (status, small results).
SMALL_MESSAGE = 64 * 1024
#: Messages taken per socket per loop turn, so a flood never keeps the host from its wall-clock check.
MESSAGES_PER_TURN = 64


def classify(error: Exception) -> str:
    text = str(error)
    if "Duplicate Signature" in text:
        return "duplicated messages"
    if "Invalid Signature" in text or "Signature" in text:
        return "badly signed messages"
    return "malformed messages"


class IopubBudget:
    """The output (IOPub bytes) one script may bring into the host, local or through a gateway; ``counts`` says
    what was dropped and why (reset per call)."""

    def __init__(self, call_bytes: int) -> None:
        self.call_bytes = call_bytes
        self.accepted = 0
        self.counts: collections.Counter[str] = collections.Counter()

    def begin_call(self) -> None:
        self.accepted = 0
        self.counts = collections.Counter()

    def admit(self, size: int) -> bool:
        """Charge one output message of ``size`` bytes; False (counted) once the call's budget is spent, except
        for small messages (status, short results), which the call needs to end."""
        if self.accepted + size > self.call_bytes and size > SMALL_MESSAGE:
            self.counts["output messages over the call's budget"] += 1
            self.counts["output bytes dropped"] += size
            return False
        self.accepted += size
        return True


def misbehaviour(counts: dict[str, int]) -> str | None:
    """The line the final view shows when the host dropped anything from the sandbox (None if nothing)."""
    parts = [f"{n:,} {what}" for what, n in sorted(counts.items()) if n]
    return "the sandbox misbehaved; the host dropped " + ", ".join(parts) if parts else None


class KernelInbox:
    """Reads one kernel client's sockets; ``counts`` says what was dropped and why (reset per call)."""

    def __init__(self, session: Any, *, call_bytes: int) -> None:
        self.session = session
        self.budget = IopubBudget(call_bytes)

    @property
    def counts(self) -> collections.Counter[str]:
        return self.budget.counts

    def begin_call(self) -> None:
        self.budget.begin_call()

    def take(self, sock: zmq.Socket[Any], *, budgeted: bool, limit: int = MESSAGES_PER_TURN) -> list[dict[str, Any]]:
        """Up to ``limit`` messages waiting on ``sock`` now. ``budgeted``: charge them to the call's IOPub budget."""
        found: list[dict[str, Any]] = []
        for _ in range(limit):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            except zmq.ZMQError:
                self.counts["unreadable messages"] += 1
                break
            if budgeted and not self.budget.admit(sum(len(f.buffer) for f in frames)):
                continue
            msg = self.parse(frames)
            if msg is not None:
                found.append(msg)
        return found

    def discard(self, sock: zmq.Socket[Any], limit: int = 10_000) -> int:
        """Drop what is queued on ``sock`` (output that arrived between calls); returns the bytes dropped."""
        dropped = 0
        for _ in range(limit):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.ZMQError:
                break
            dropped += sum(len(f.buffer) for f in frames)
        return dropped

    def parse(self, frames: list[Any]) -> dict[str, Any] | None:
        try:
            _idents, rest = self.session.feed_identities(frames, copy=False)
            msg: dict[str, Any] = self.session.deserialize(rest, content=True, copy=False)
            if not isinstance(msg.get("content"), dict) or not isinstance(msg.get("parent_header"), dict):
                raise ValueError("not a Jupyter message")
        except Exception as e:  # anything: the bytes came from the sandbox
            self.counts[classify(e)] += 1
            return None
        return msg
