"""Where the host keeps what a failed sandbox wrote: its ``kernel.log`` outlives the run directory.

The run directory (and the log in it) is removed with the sandbox; when the sandbox fails to start, a copy of the
log goes to the user's cache directory (``~/.cache/codeagent/sandbox-logs`` on Linux), and the error names it.
The newest :data:`KEEP` logs are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

KEEP = 20


def log_dir() -> Path:
    return Path(platformdirs.user_cache_dir("codeagent")) / "sandbox-logs"


def keep_log(source: str | os.PathLike[str], reason: str) -> Path | None:
    """Copy ``source`` to the log folder as ``<time>-<pid>-<reason>.log``; its new path (None if it cannot)."""
    folder = log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**9}-{reason}.log"
        shutil.copyfile(source, target)
    except OSError as e:
        log.warning("could not keep the sandbox log %s: %s", source, e)
        return None
    for old in sorted(folder.glob("*.log"))[:-KEEP]:
        old.unlink(missing_ok=True)
    log.info("kept the sandbox log at %s", target)
    return target
