"""Collect a script's output on the host, with a hard cap, and shape what the model sees."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

MAX_DISPLAYS = 100
#: Terminal control sequences: CSI (colours, cursor moves), OSC (OSC 52 writes the clipboard, OSC 8 hides a link
#: behind text), the other ESC forms and their 8-bit C1 spellings; C0 controls but tab and newline; bidi overrides
#: (text that reads differently from what it says).
_CONTROLS = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # other escapes
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def strip_controls(text: str) -> str:
    """``text`` without terminal control sequences or invisible controls (``\\r\\n`` becomes ``\\n``)."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n"))


strip_ansi = strip_controls  # tracebacks arrive coloured


def cap_text(text: str, limit: int) -> str:
    """``text`` if short enough, else its head and tail around a visible ``… truncated N chars`` note."""
    if len(text) <= limit:
        return text
    tail = min(2_000, limit // 4)
    head = limit - tail
    dropped = len(text) - head - tail
    return f"{text[:head]}\n… truncated {dropped:,} chars …\n{text[len(text) - tail :]}"


@dataclass
class OutputCollector:
    """Everything a script printed, in arrival order, kept up to ``hard_limit`` characters."""

    hard_limit: int
    parts: list[str] = field(default_factory=list)
    kept: int = 0
    dropped: int = 0
    result_repr: str | None = None
    traceback: str | None = None
    displays: list[dict[str, Any]] = field(default_factory=list)

    display_bytes: int = 0
    dropped_displays: int = 0

    def add_display(self, bundle: dict[str, Any]) -> bool:
        """Keep a rich output while the displays stay under ``hard_limit`` characters in all; else count it."""
        size = sum(len(v) if isinstance(v, str) else len(str(v)) for v in bundle.get("data", {}).values())
        if self.display_bytes + size > self.hard_limit or len(self.displays) >= MAX_DISPLAYS:
            self.dropped_displays += 1
            return False
        self.display_bytes += size
        self.displays.append(bundle)
        return True

    def add(self, text: str) -> None:
        room = self.hard_limit - self.kept
        if room <= 0:
            self.dropped += len(text)
            return
        piece = text[:room]
        self.parts.append(piece)
        self.kept += len(piece)
        self.dropped += len(text) - len(piece)

    @property
    def total_chars(self) -> int:
        return self.kept + self.dropped + len(self.result_repr or "") + len(self.traceback or "")

    def for_model(self, limit: int) -> str:
        """Printed output, then the final expression's repr or the traceback, capped at ``limit`` chars."""
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n… {self.dropped:,} more chars of output were dropped by the host …\n"
        if self.dropped_displays:
            text += f"\n… {self.dropped_displays:,} more displays (figures, HTML) were dropped by the host …\n"
        if self.result_repr is not None:
            text += ("" if not text or text.endswith("\n") else "\n") + self.result_repr
        if self.traceback is not None:
            text += ("" if not text or text.endswith("\n") else "\n") + self.traceback
        return cap_text(text, limit) if text else "(the script printed nothing)"


def describe_display(data: dict[str, Any], n: int) -> str:
    """The short placeholder the model sees for a rich output, e.g. ``[figure 1: 640×480 PNG]``."""
    png = data.get("image/png")
    if isinstance(png, str):
        size = png_size(png)
        return f"[figure {n}: {size[0]}×{size[1]} PNG]" if size else f"[figure {n}: PNG]"
    if "image/jpeg" in data:
        return f"[figure {n}: JPEG]"
    if "text/html" in data:
        kind = "HTML table" if "<table" in str(data["text/html"])[:2000] else "HTML"
        return f"[display {n}: {kind}]"
    return f"[display {n}: {', '.join(sorted(data)) or 'empty'}]"


def png_size(b64: str) -> tuple[int, int] | None:
    """Width and height from a base64 PNG's IHDR chunk."""
    try:
        head = base64.b64decode(b64[:44])
    except (binascii.Error, ValueError):
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
