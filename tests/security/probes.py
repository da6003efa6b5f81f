"""The attack scripts' reporting convention: each attempt prints one ``@@ label OUTCOME ...`` line.

Every attack script starts with :data:`PRELUDE`, which defines ``probe(label, fn)`` (run ``fn``, print whether
it was allowed or which exception and errno stopped it) and ``syscall(nr, *args)`` (a raw syscall through
ctypes, raising ``OSError`` with the errno). The tests parse those lines with :func:`parse_probes` and assert
the specific failure, so an attack that "fails" for the wrong reason (a typo, a timeout after packets left)
does not pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRELUDE = r'''
import ctypes as _ct, errno as _errno, os, socket as _socket
_EAI = {getattr(_socket, n): n for n in dir(_socket) if n.startswith("EAI_")}
def probe(label, fn):
    """Run one attempt; print '@@ label ALLOWED value' or '@@ label DENIED ExcType ERRNO'. True if allowed."""
    try:
        value = fn()
    except BaseException as e:
        n = getattr(e, "errno", None)
        if isinstance(e, _socket.gaierror):
            name = _EAI.get(n, str(n))
        elif isinstance(n, int):
            name = _errno.errorcode.get(n, str(n))
        else:
            name = "-"
        print(f"@@ {label} DENIED {type(e).__name__} {name}", flush=True)  # one write: threads may print too
        return False
    print(f"@@ {label} ALLOWED " + repr(value)[:160].replace("\n", " "), flush=True)
    return True
_libc = _ct.CDLL(None, use_errno=True)
_libc.syscall.restype = _ct.c_long
def syscall(nr, *args):
    """A raw syscall via libc; OSError(errno) on failure, else the return value."""
    cargs = [_ct.c_long(a) if isinstance(a, int) else a for a in args]
    r = _libc.syscall(_ct.c_long(nr), *cargs)
    if r == -1:
        n = _ct.get_errno()
        raise OSError(n, os.strerror(n))
    return r
'''

_LINE = re.compile(r"^@@ (\S+) (ALLOWED|DENIED|SKIPPED) ?(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Probe:
    """One attempt as the script reported it."""

    label: str
    outcome: str  # ALLOWED | DENIED | SKIPPED
    exc: str = ""  # exception class name when DENIED
    err: str = ""  # errno name (EPERM, ENOENT, EAI_AGAIN, ...) or "-" when DENIED
    value: str = ""  # repr of the value when ALLOWED

    @property
    def denied(self) -> bool:
        return self.outcome == "DENIED"


def parse_probes(output: str) -> dict[str, Probe]:
    """Every ``@@`` line of the script's output by label (the last one wins)."""
    found: dict[str, Probe] = {}
    for label, outcome, rest in _LINE.findall(output):
        if outcome == "DENIED":
            exc, _, err = rest.partition(" ")
            found[label] = Probe(label, outcome, exc=exc, err=err.strip())
        else:
            found[label] = Probe(label, outcome, value=rest)
    return found
