"""The lockdown layers applied by the launcher before ipykernel starts.

``apply(spec)`` receives the launch spec (see ``codeagent.sandbox.kernel.LaunchSpec``) and applies every
layer named in ``spec["layers"]``, in the order the design notes give. ``probe()`` reports which layers this
machine supports, for ``%codeagent --sandbox-info``.
"""

from __future__ import annotations

from typing import Any


def apply(spec: dict[str, Any]) -> None:
    """Apply the layers listed in ``spec["layers"]`` (none yet: filled in by the lockdown work)."""
    if spec.get("layers"):
        raise RuntimeError(f"lockdown layers not available: {spec['layers']}")
