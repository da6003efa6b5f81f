"""Messages on the bridge's stream socket: framing, the incremental decoder, buffers for received parts.

A message is ``b"CAB1"``, the part count (u32), each part's length (u64), then the parts. Everything received is
untrusted: sizes are checked against the caller's limits before anything is allocated. Imported on both sides;
standard library only (NumPy, when installed, only to allocate large receive buffers).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

Buffer = bytes | bytearray | memoryview | Any  # anything with the buffer protocol (e.g. pyarrow.Buffer)

MAGIC = b"CAB1"
_PREFIX = struct.Struct("<4sI")
_SCRATCH = 256 * 1024


class ProtocolError(Exception):
    """The peer sent bytes that are not a well-formed message (the stream cannot be trusted after this)."""


_LENGTHS: dict[int, struct.Struct] = {}


def _lengths_struct(count: int) -> struct.Struct:
    packer = _LENGTHS.get(count)
    if packer is None:
        packer = _LENGTHS[count] = struct.Struct(f"<4sI{count}Q")
    return packer


def _size(part: Buffer) -> int:
    return len(part) if type(part) is bytes else memoryview(part).nbytes


def frame_header(parts: Sequence[Buffer]) -> bytes:
    """The bytes that precede ``parts`` on the wire."""
    return _lengths_struct(len(parts)).pack(MAGIC, len(parts), *[_size(p) for p in parts])


def message_size(parts: Sequence[Buffer]) -> int:
    return sum(_size(p) for p in parts)


def pack(parts: Sequence[bytes]) -> bytes:
    """A whole message of small ``bytes`` parts as one ``bytes`` (the fast path for ordinary calls)."""
    return _lengths_struct(len(parts)).pack(MAGIC, len(parts), *[len(p) for p in parts]) + b"".join(parts)


def ok_head(req_id: int) -> bytes:
    """The reply head of a successful call, exactly as the host writes it (so it can be compared, not parsed)."""
    return b'{"id":%d,"ok":true}' % req_id


def wire_buffers(parts: Sequence[Buffer], join_below: int = 64 * 1024) -> list[Buffer]:
    """Header and parts ready for ``sendmsg``; small messages are joined into one buffer."""
    header = frame_header(parts)
    if message_size(parts) < join_below:
        return [header + b"".join(parts)]
    return [header, *parts]


_LARGE = 1 << 20


def allocate(size: int) -> bytearray | memoryview:
    """A writable buffer for a received part. Large ones come from NumPy when it is installed: it skips
    zero-filling and asks for huge pages, which halves the cost of taking in 100 MB on a VM."""
    if size >= _LARGE:
        try:
            import numpy as np
        except ImportError:
            return bytearray(size)
        return memoryview(np.empty(size, np.uint8))  # type: ignore[arg-type]  # ndarray has the buffer protocol
    return bytearray(size)


def text(part: Buffer) -> str:
    """A received part as text (parts are bytearrays or memoryviews; never trusted to be valid UTF-8)."""
    return str(part, "utf-8", "surrogatepass")


class FrameDecoder:
    """Reassembles messages from a byte stream, checking the part count and total size before allocating.

    Use: ``n = sock.recv_into(dec.want())`` then ``messages = dec.advance(n)``. Large parts are received
    straight into their own buffer (one copy, by the kernel); small messages come through a scratch buffer.
    A part's buffer is allocated only when its first byte arrives.
    """

    def __init__(self, max_bytes: int, max_parts: int = 256) -> None:
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        #: Called with a message's total size once its header is read, before any part is allocated; may raise
        #: ProtocolError (the receiver's budget over all its streams).
        self.reserve: Callable[[int], None] | None = None
        self._buf = bytearray(_SCRATCH)
        self._view = memoryview(self._buf)
        self._start = 0  # unread scratch bytes are _buf[_start:_end]
        self._end = 0
        self._lengths: tuple[int, ...] | None = None  # of the message being received
        self._parts: list[Any] = []  # bytearray or memoryview
        self._index = 0  # part being filled
        self._filled = 0
        self._direct = False  # the last want() was a part's own buffer

    @property
    def in_message(self) -> bool:
        """True while a message announced by its header is still being received."""
        return self._lengths is not None

    @property
    def idle(self) -> bool:
        """True between messages with nothing buffered."""
        return self._lengths is None and self._start == self._end

    def want(self) -> memoryview:
        """Where the next received bytes should go (never empty)."""
        if self._lengths is not None and self._start == self._end:
            remaining = self._lengths[self._index] - self._filled
            if remaining >= _SCRATCH // 4:
                self._direct = True
                return memoryview(self._part())[self._filled :]
        self._direct = False
        if self._start == self._end:
            self._start = self._end = 0
        elif len(self._buf) - self._end < 4096:
            tail = self._end - self._start
            self._buf[:tail] = self._buf[self._start : self._end]
            self._start, self._end = 0, tail
        return self._view[self._end :]

    def advance(self, n: int) -> list[list[Any]]:
        """Account for ``n`` bytes written into :meth:`want`; returns the messages now complete."""
        if self._direct:
            self._filled += n
            self._direct = False
        else:
            self._end += n
        done: list[list[Any]] = []
        while True:
            if self._lengths is None:
                if self._start == self._end:
                    return done
                whole = self._whole_message()
                if whole is not None:
                    done.append(whole)
                    continue
                if not self._read_header():
                    return done
            assert self._lengths is not None
            while self._index < len(self._lengths):
                need = self._lengths[self._index] - self._filled
                if need:
                    take = min(need, self._end - self._start)
                    if not take:
                        return done
                    part = self._part()
                    part[self._filled : self._filled + take] = self._view[self._start : self._start + take]
                    self._start += take
                    self._filled += take
                    if take < need:
                        return done
                self._part()
                self._index += 1
                self._filled = 0
            done.append(self._parts)
            self._lengths, self._parts, self._index = None, [], 0

    def _part(self) -> bytearray | memoryview:
        assert self._lengths is not None
        if len(self._parts) == self._index:
            self._parts.append(allocate(self._lengths[self._index]))
        return self._parts[self._index]

    def _whole_message(self) -> list[Any] | None:
        """A message lying entirely in the scratch buffer, taken out in one go (the small-message path)."""
        start, avail = self._start, self._end - self._start
        if avail < _PREFIX.size:
            return None
        magic, count = _PREFIX.unpack_from(self._buf, start)
        if magic != MAGIC or not 1 <= count <= self.max_parts:
            return None  # _read_header says what is wrong
        packer = _lengths_struct(count)
        if avail < packer.size:
            return None
        lengths = packer.unpack_from(self._buf, start)[2:]
        total = sum(lengths)
        if total > self.max_bytes or avail < packer.size + total:
            return None
        pos = start + packer.size
        parts = []
        buf = self._buf
        for length in lengths:
            parts.append(buf[pos : pos + length])
            pos += length
        self._start = pos
        return parts

    def _read_header(self) -> bool:
        avail = self._end - self._start
        if avail < _PREFIX.size:
            return False
        magic, count = _PREFIX.unpack_from(self._buf, self._start)
        if magic != MAGIC:
            raise ProtocolError("not a codeagent bridge message (bad magic)")
        if not 1 <= count <= self.max_parts:
            raise ProtocolError(f"a message may have 1 to {self.max_parts} parts, not {count}")
        size = _PREFIX.size + 8 * count
        if avail < size:
            return False
        lengths = struct.unpack_from(f"<{count}Q", self._buf, self._start + _PREFIX.size)
        total = sum(lengths)
        if total > self.max_bytes:
            raise MessageTooLarge(total, self.max_bytes)
        if self.reserve is not None:
            self.reserve(total)
        self._start += size
        self._lengths, self._parts, self._index, self._filled = lengths, [], 0, 0
        return True


class MessageTooLarge(ProtocolError):
    """A message announced more bytes than the receiver accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
