"""Synthetic identity files for the sandbox: it learns no user name, home, uid list or host name of the host.

With the mounts layer they are bound over the host's ``/etc/passwd``, ``/etc/group``, ``/etc/hostname`` and
``/etc/hosts``; the UTS namespace already gives the sandbox its own host name (``codeagent-sandbox``).
"""

from __future__ import annotations

import os

HOSTNAME = "codeagent-sandbox"


def contents(uid: int, gid: int, home: str) -> dict[str, str]:
    """Target path -> text."""
    return {
        "/etc/passwd": (
            "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
            f"sandbox:x:{uid}:{gid}:codeagent sandbox:{home}:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "/etc/group": f"root:x:0:\nsandbox:x:{gid}:\nnogroup:x:65534:\n",
        "/etc/hostname": f"{HOSTNAME}\n",
        "/etc/hosts": f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    }


def write(run_dir: str, uid: int, gid: int, home: str) -> dict[str, str]:
    """Write the files into the run directory; returns target -> file, for the launch spec's ``etc_files``."""
    written: dict[str, str] = {}
    for target, text in contents(uid, gid, home).items():
        path = os.path.join(run_dir, "etc-" + os.path.basename(target))
        # O_NOFOLLOW: the sandbox may write to the run directory; never follow a link it left there
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        written[target] = path
    return written
