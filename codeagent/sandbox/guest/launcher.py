"""Entry point of the sandbox kernel process: apply the lockdown layers, then exec ipykernel.

Run as ``python -m codeagent.sandbox.guest.launcher LAUNCH.json``. The JSON file (written by the host into the
per-kernel 0700 run directory) is a :class:`LaunchSpec`. Only the standard library and our own lockdown
modules are imported here: this runs before any untrusted code, and it must stay small and fast.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from typing import Any

#: Exit status when the lockdown cannot be applied (EX_SOFTWARE); the kernel never starts.
EXIT_LOCKDOWN_FAILED = 70


def read_spec(path: str) -> dict[str, Any]:
    """Read the launch spec, refusing one this user does not own.

    The sandbox may be able to replace files in the run directory; a spec it wrote must never be used to
    restart a kernel (it could simply ask for no lockdown).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
            raise PermissionError(f"{path}: not a regular file owned by uid {os.geteuid()}")
        spec: dict[str, Any] = json.load(f)
    spec["_spec_file"] = os.path.abspath(path)
    return spec


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m codeagent.sandbox.guest.launcher LAUNCH.json\n")
        raise SystemExit(2)
    spec = read_spec(argv[1])
    env: dict[str, str] = dict(spec["env"])
    exec_argv: list[str] = spec["argv"]
    layers = spec.get("layers") or []
    if "pidns" in layers:
        # ipykernel's parent poller exits when getppid() == 1, which is always true below our init; the
        # supervisor watches the host instead (lockdown.pidns).
        env.pop("JPY_PARENT_PID", None)
    else:
        # Without our init, ipykernel's own parent poller ends the kernel when the host dies.
        env["JPY_PARENT_PID"] = str(os.getppid())
    if "rlimits" in layers:
        # RLIMIT_AS counts address space reserved, not used: glibc reserves 64 MiB per malloc arena, up to
        # 8 arenas per CPU, so a few threads (ipykernel has several) would eat a 2 GiB limit on a big machine.
        env.setdefault("MALLOC_ARENA_MAX", "2")

    from codeagent.sandbox.guest import lockdown

    try:
        lockdown.apply(spec)
    except lockdown.LockdownError as e:
        sys.stderr.write(f"codeagent sandbox: {e}\n")
        sys.stderr.flush()
        os._exit(EXIT_LOCKDOWN_FAILED)
    os.chdir(spec["workspace"])
    if runs_in_this_interpreter(exec_argv):
        run_kernel_here(exec_argv[3:], env, spec["workspace"])
    else:
        os.execve(exec_argv[0], exec_argv, env)


KERNEL_MODULE = "codeagent.sandbox.guest.kernel_entry"


def runs_in_this_interpreter(argv: list[str]) -> bool:
    """True when ``argv`` is this interpreter running our kernel module: then no second exec is needed."""
    return (
        len(argv) >= 3
        and argv[1:3] == ["-m", KERNEL_MODULE]
        and os.path.realpath(argv[0]) == os.path.realpath(sys.executable)
    )


def run_kernel_here(kernel_args: list[str], env: dict[str, str], workspace: str) -> None:
    """Start ipykernel in this (already locked-down) process instead of exec'ing a new interpreter.

    Saves a second interpreter start-up (~110 ms). The environment is replaced exactly as an exec would;
    variables read by the interpreter at start-up (PYTHONPATH, MALLOC_ARENA_MAX, ...) were already given to
    this process by the host.
    """
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [KERNEL_MODULE, *kernel_args]
    # as `python -m` would set it for a process started in the workspace (-P left the host's cwd off)
    if sys.flags.safe_path:
        sys.path.insert(0, workspace)
    else:
        sys.path[0] = workspace
    from codeagent.sandbox.guest import kernel_entry

    kernel_entry.main()
    raise SystemExit(0)


if __name__ == "__main__":
    main(sys.argv)
