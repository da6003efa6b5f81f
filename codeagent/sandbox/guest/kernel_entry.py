"""What the launcher execs: ipykernel, adjusted to run without any TCP (the sandbox may have no AF_INET).

* ipykernel's IOPub pipe (output of forked children, e.g. multiprocessing) binds tcp://127.0.0.1; here it
  uses an ipc socket in the run directory (the connection file's directory) instead, or, when that path
  would be too long for a Unix socket, a Linux abstract socket (private to the sandbox's network
  namespace).
* The debugger and jedi completion are left out (see SKIPPED_AT_STARTUP): faster start, less memory.
* Messages are always copied into zmq (``Session.copy_threshold``): a zero-copy send of a large output starts
  pyzmq's garbage-collector thread and a zmq context (3 threads) that would outlive the script that printed,
  and the host restarts the kernel for threads a script left (host/threads.py).
"""

from __future__ import annotations

import os
import sys
from typing import Any

_IPC_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL


def connection_file(argv: list[str]) -> str | None:
    """The value of ``-f FILE`` / ``-f=FILE`` / ``--f=FILE`` in the kernel's arguments."""
    for i, arg in enumerate(argv):
        if arg == "-f" and i + 1 < len(argv):
            return argv[i + 1]
        for prefix in ("-f=", "--f="):
            if arg.startswith(prefix):
                return arg[len(prefix) :]
    return None


def pipe_address(conn_file: str | None) -> str:
    """Where forked children send their output: a socket next to the connection file when it fits."""
    if conn_file:
        path = os.path.join(os.path.dirname(os.path.abspath(conn_file)), "iopub-pipe")
        if len(path.encode()) <= _IPC_PATH_MAX:
            return "ipc://" + path
    return f"ipc://@codeagent-iopub-{os.getpid()}-{os.urandom(4).hex()}"


def _patch_iopub_pipe(address: str) -> None:
    import zmq
    from ipykernel import iostream
    from zmq.eventloop.zmqstream import ZMQStream

    def setup_pipe_in(self: iostream.IOPubThread) -> None:
        self._pipe_uuid = os.urandom(16)
        pipe_in = self.socket.context.socket(zmq.PULL)
        pipe_in.linger = 0
        try:
            pipe_in.bind(address)
        except zmq.ZMQError as e:
            sys.stderr.write(f"codeagent: IOPub pipe unavailable ({e}); output of forked children is lost\n")
            self._pipe_flag = False
            pipe_in.close()
            return
        self._pipe_in = ZMQStream(pipe_in, self.io_loop)
        self._pipe_in.on_recv(self._handle_pipe_msg)

    def setup_pipe_out(self: iostream.IOPubThread) -> tuple[zmq.Context, zmq.Socket]:
        ctx = zmq.Context()  # a fresh context: this runs in a forked child
        pipe_out = ctx.socket(zmq.PUSH)
        pipe_out.linger = 3000
        pipe_out.connect(address)
        return ctx, pipe_out

    iostream.IOPubThread._setup_pipe_in = setup_pipe_in  # type: ignore[method-assign]
    iostream.IOPubThread._setup_pipe_out = setup_pipe_out  # type: ignore[method-assign]


#: Imported by ipykernel/IPython at start-up but useless in the sandbox: debugpy (the debugger only speaks TCP)
#: and jedi (completion; ~10 MiB resident). Blocked while ipykernel starts; the script may still import them.
SKIPPED_AT_STARTUP = ("debugpy", "jedi")


def _import_kernel_without(skipped: tuple[str, ...]) -> None:
    blocked = [name for name in skipped if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import ipykernel.debugger  # records _is_debugpy_available = False
        import ipykernel.kernelapp  # noqa: F401
        import IPython.core.completer  # noqa: F401  # records that jedi is unavailable
    finally:
        for name in blocked:
            del sys.modules[name]


#: Characters of printed output per IOPub message (at most ~6 MB as JSON): the host refuses messages past
#: SandboxPolicy.iopub_message_mb unread, so one huge print must not travel as one message.
STREAM_PIECE_CHARS = 1_000_000


def send_output_in_pieces() -> None:
    """Split what ipykernel flushes at once (a 40 MB print is one buffer) into pieces of STREAM_PIECE_CHARS."""
    from ipykernel.iostream import OutStream

    original = OutStream._flush_buffers
    if getattr(original, "_codeagent", False):
        return

    def flush_buffers(self: Any) -> Any:
        for parent, data in original(self):
            for start in range(0, max(len(data), 1), STREAM_PIECE_CHARS):
                yield parent, data[start : start + STREAM_PIECE_CHARS]

    flush_buffers._codeagent = True  # type: ignore[attr-defined]
    OutStream._flush_buffers = flush_buffers  # type: ignore[method-assign]


#: Above any message the host accepts (SandboxPolicy.iopub_message_mb): every send copies, none is zero-copy.
COPY_THRESHOLD = 1 << 40

#: IPython's history database in memory: no file in the workspace, and no saving thread. IPython >= 9 stops that
#: thread before every ``os.fork()`` and starts a new one in the next script, which the host's end-of-script
#: check sees as a thread left running (threads.py) and restarts the sandbox after any script that forked.
KERNEL_OPTIONS = ("--HistoryManager.hist_file=:memory:", f"--Session.copy_threshold={COPY_THRESHOLD}")


def main() -> None:
    sys.argv.extend(KERNEL_OPTIONS)
    _patch_iopub_pipe(pipe_address(connection_file(sys.argv[1:])))
    _import_kernel_without(SKIPPED_AT_STARTUP)
    send_output_in_pieces()
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
