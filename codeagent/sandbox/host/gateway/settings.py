"""Where gateway sandboxes run (no heavy imports: read at every call)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_KERNEL_NAME = "codeagent-sandbox"


@dataclass(frozen=True, repr=False)
class GatewaySettings:
    """Where sandboxes run when a gateway is configured. The token never appears in repr or messages."""

    url: str
    token: str = ""
    kernel_name: str = DEFAULT_KERNEL_NAME

    def __repr__(self) -> str:
        token = "'***'" if self.token else "''"
        return f"GatewaySettings(url={self.url!r}, kernel_name={self.kernel_name!r}, token={token})"

    @classmethod
    def from_config(cls, url: str | None, token: str | None, kernel_name: str | None) -> GatewaySettings | None:
        """Settings from the CodeAgent traits, falling back to JUPYTER_GATEWAY_URL / JUPYTER_GATEWAY_AUTH_TOKEN."""
        url = url or os.environ.get("JUPYTER_GATEWAY_URL") or ""
        if not url:
            return None
        token = token or os.environ.get("JUPYTER_GATEWAY_AUTH_TOKEN") or ""
        return cls(url=url, token=token, kernel_name=kernel_name or DEFAULT_KERNEL_NAME)
