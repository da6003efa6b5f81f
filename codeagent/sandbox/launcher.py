"""Entry point of the sandbox kernel process: apply the lockdown layers, then exec ipykernel.

Run as ``python -m codeagent.sandbox.launcher LAUNCH.json``. The JSON file (written by the host into the
per-kernel 0700 run directory) is a :class:`LaunchSpec`. Only the standard library and our own lockdown
modules are imported here: this runs before any untrusted code, and it must stay small and fast.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m codeagent.sandbox.launcher LAUNCH.json\n")
        raise SystemExit(2)
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    env: dict[str, str] = spec["env"]
    exec_argv: list[str] = spec["argv"]

    from codeagent.sandbox import lockdown

    lockdown.apply(spec)
    os.chdir(spec["workspace"])
    os.execve(exec_argv[0], exec_argv, env)


if __name__ == "__main__":
    main(sys.argv)
