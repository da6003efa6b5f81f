"""The IPython shell the sandbox kernel runs: the guest's one stated use of IPython besides ``kernel_entry``
(which starts ipykernel). The runtime and the bridge clients reach the shell, its events and its kernel here."""

from __future__ import annotations

from typing import Any


def current() -> Any:
    """The running ``InteractiveShell`` (None outside IPython)."""
    from IPython import get_ipython

    return get_ipython()
