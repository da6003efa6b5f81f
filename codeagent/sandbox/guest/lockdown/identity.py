"""Who the sandbox runs as, and handing it the directories it must write to."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Identity:
    """The uid/gid the sandbox runs as, identical inside the user namespace and as seen from the host."""

    uid: int
    gid: int
    #: True when a root host runs the sandbox as another uid: mapping it needs a helper that stays in the
    #: parent namespace, and the bind sources must be opened before the switch (the prefix may sit under a
    #: 0700 /root).
    drops_root: bool


def target(spec: dict[str, Any]) -> Identity:
    euid = os.geteuid()
    wanted = spec.get("uid")
    if euid == 0 and wanted is not None and wanted != 0:
        return Identity(uid=int(wanted), gid=int(wanted), drops_root=True)
    return Identity(uid=euid, gid=os.getegid(), drops_root=False)


def grant(spec: dict[str, Any], ident: Identity) -> None:
    """Give the sandbox uid the workspace, the run directory and the files and sockets in it (not the
    launch spec): the kernel reads the connection file, binds its sockets there and connects to the host's.

    The launch spec itself stays owned by the host: the launcher refuses a spec it does not own, so a
    sandbox that replaces the file cannot widen its own lockdown on the next restart.
    """
    if not ident.drops_root:
        return
    keep = spec.get("_spec_file")
    for directory in (spec["workspace"], spec["run_dir"]):
        os.chown(directory, ident.uid, ident.gid, follow_symlinks=False)
    with os.scandir(spec["run_dir"]) as entries:
        for entry in entries:
            if keep and os.path.abspath(entry.path) == os.path.abspath(keep):
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISREG(mode) or stat.S_ISSOCK(mode):
                os.chown(entry.path, ident.uid, ident.gid, follow_symlinks=False)


def reachable(path: str, ident: Identity) -> bool:
    """Whether every directory above ``path`` lets ``ident`` through (mode bits only, no ACLs)."""
    path = os.path.abspath(path)
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        st = os.stat("/".join(parts[:i]) or "/")
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_uid == ident.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == ident.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def switch(ident: Identity) -> None:
    """Become the sandbox uid. Inside our user namespace this keeps the namespace capabilities; as real
    root (no user namespace) the kernel clears all capabilities."""
    if not ident.drops_root:
        return
    os.setgroups([])
    os.setresgid(ident.gid, ident.gid, ident.gid)
    os.setresuid(ident.uid, ident.uid, ident.uid)


def verify_dropped(ident: Identity) -> None:
    """Raise unless every uid and gid is the sandbox's and no supplementary group is left."""
    if os.getresuid() != (ident.uid,) * 3 or os.getresgid() != (ident.gid,) * 3 or os.getgroups():
        raise OSError(f"dropping to uid {ident.uid} did not take: uids {os.getresuid()}, gids {os.getresgid()}")
