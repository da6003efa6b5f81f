"""Host-side listeners that count every connection or datagram the sandbox manages to deliver."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Listener:
    """One listening socket on the host and how many connections/datagrams reached it."""

    name: str
    family: int
    kind: int
    address: str | tuple[str, int]
    hits: int = 0
    sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Listener:
        sock = socket.socket(self.family, self.kind)
        if self.family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.address)
        if self.kind == socket.SOCK_STREAM:
            sock.listen(16)
        if self.family == socket.AF_INET:
            self.address = sock.getsockname()
        sock.settimeout(0.1)
        self.sock = sock
        self._thread = threading.Thread(target=self._serve, name=f"listener-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self.sock is not None
        while not self._stop.is_set():
            try:
                if self.kind == socket.SOCK_STREAM:
                    conn, _ = self.sock.accept()
                    self.hits += 1
                    with contextlib.suppress(OSError):
                        conn.sendall(b"host-listener-reached\n")
                    conn.close()
                else:
                    self.sock.recvfrom(65536)
                    self.hits += 1
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.sock is not None:
            self.sock.close()
        if self.family == socket.AF_UNIX and isinstance(self.address, str) and not self.address.startswith("\0"):
            with contextlib.suppress(OSError):
                os.unlink(self.address)


@dataclass
class Listeners:
    """TCP and UDP on 127.0.0.1, an ssh-agent-like Unix socket under /tmp, an abstract Unix socket."""

    tcp: Listener
    udp: Listener
    agent: Listener  # path socket, like $SSH_AUTH_SOCK
    abstract: Listener

    @classmethod
    def start(cls, agent_path: str, abstract_name: str) -> Listeners:
        return cls(
            tcp=Listener("tcp", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0)).start(),
            udp=Listener("udp", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0)).start(),
            agent=Listener("agent", socket.AF_UNIX, socket.SOCK_STREAM, agent_path).start(),
            abstract=Listener("abstract", socket.AF_UNIX, socket.SOCK_STREAM, "\0" + abstract_name).start(),
        )

    def all(self) -> list[Listener]:
        return [self.tcp, self.udp, self.agent, self.abstract]

    def hits(self) -> dict[str, int]:
        return {x.name: x.hits for x in self.all()}

    def stop(self) -> None:
        for x in self.all():
            x.stop()
