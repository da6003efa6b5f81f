"""The public record of one tool call, as the trace and the final view show it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCallRecord:
    """One tool call made by a script (or by the model directly), as shown in the trace."""

    name: str
    arguments: dict[str, Any]  # whole when small, else each large value replaced by a preview string
    result_preview: str = ""
    arguments_chars: int = 0  # size of the encoded arguments: JSON characters plus binary bytes
    result_chars: int = 0  # size of the encoded result: JSON characters plus binary bytes
    duration_s: float = 0.0
    error: str | None = None  # "TypeName: message"
    started_at: float = field(default_factory=time.time)
    approval: str | None = None  # who let it run or stopped it, for tools that need approval
