"""A tool's exception as the script and the model see it: its message without host paths, its built-in base."""

from __future__ import annotations

import contextlib
import os
import re
import sys


def builtin_base(error: BaseException) -> str | None:
    """The nearest built-in exception class of ``error`` that takes one message (so the script can catch
    ``ToolValueError`` as ``TypeError``, an ``HTTPError`` as ``OSError``)."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception) and cls is not Exception:
            try:
                cls("message")
            except TypeError:
                continue
            return cls.__name__
    return None


def exception_message(e: BaseException) -> str:
    """The message the exception was raised with (``KeyError('x')`` gives ``x``, not ``'x'``), without the
    host's own paths (the notebook's directory, the home directory, the Python prefix)."""
    if len(e.args) == 1 and isinstance(e.args[0], str):
        return redact_host_paths(e.args[0])
    return redact_host_paths(str(e))


def _host_roots() -> list[tuple[str, str]]:
    roots = {os.path.expanduser("~"): "~", sys.prefix: "<python>", sys.base_prefix: "<python>"}
    with contextlib.suppress(OSError):
        roots[os.getcwd()] = "."
    found = {os.path.realpath(path): name for path, name in roots.items() if path and path != "/"}
    found.update({path: name for path, name in roots.items() if path and path != "/"})
    return sorted(found.items(), key=lambda item: -len(item[0]))


def redact_host_paths(message: str) -> str:
    """``message`` with the host's directories replaced by ``.``, ``~`` or ``<python>`` (a tool's error
    travels into the sandbox and to the model: it need not say where the notebook lives or who runs it)."""
    for path, name in _host_roots():
        if path in message:
            message = re.sub(re.escape(path) + r"(?=[/\s'\"):,]|$)", name, message)
    return message
