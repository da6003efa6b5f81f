"""Capabilities: empty the bounding and ambient sets, lock the securebits, clear what is left."""

from __future__ import annotations

import ctypes
import errno

from . import _sys

_CAP_SETPCAP = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# SECBIT_NOROOT(+LOCKED): uid 0 gains nothing at exec; KEEP_CAPS_LOCKED; NO_CAP_AMBIENT_RAISE(+LOCKED).
# Not SECBIT_NO_SETUID_FIXUP: a later switch from root to the sandbox uid must still clear capabilities.
_SECUREBITS = (1 << 0) | (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7)


class _Header(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _Data(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 63


def _effective() -> int:
    data = (_Data * 2)()
    _sys.syscall(
        _sys.syscall_number("capget"), ctypes.byref(_Header(_LINUX_CAPABILITY_VERSION_3, 0)), data, what="capget"
    )
    return data[0].effective | (data[1].effective << 32)


def drop_bounding() -> bool:
    """Empty the bounding set (no exec can ever regain a capability). False when we lack CAP_SETPCAP,
    which only happens to an unprivileged process outside a user namespace: it has nothing to drop."""
    if not _effective() & (1 << _CAP_SETPCAP):
        return False
    _sys.prctl(_sys.PR_SET_SECUREBITS, _SECUREBITS)
    for cap in range(_last_cap() + 1):
        try:
            _sys.prctl(_sys.PR_CAPBSET_DROP, cap)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: capability unknown to this kernel
                raise
    return True


def clear() -> None:
    """Clear the ambient, effective, permitted and inheritable sets of this process."""
    _sys.prctl(_sys.PR_CAP_AMBIENT, _sys.PR_CAP_AMBIENT_CLEAR_ALL)
    data = (_Data * 2)()
    _sys.syscall(
        _sys.syscall_number("capset"), ctypes.byref(_Header(_LINUX_CAPABILITY_VERSION_3, 0)), data, what="capset"
    )


def verify_empty() -> None:
    """Raise unless the effective, permitted, inheritable and ambient sets are empty (and, when this process
    could drop it, the bounding set)."""
    with open("/proc/self/status") as f:
        sets = {k: int(v, 16) for k, _, v in (line.partition(":\t") for line in f) if k.startswith("Cap")}
    left = {k: hex(v) for k, v in sets.items() if v and k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}
    if left:
        raise OSError(f"capabilities left after dropping them: {left}")
