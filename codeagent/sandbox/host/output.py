"""Collect a script's output on the host, with a hard cap, and shape what the model sees."""

from __future__ import annotations

import base64
import binascii
import collections
import re
from collections.abc import Callable
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


# -- the host's own notes, unforgeable ---------------------------------------------------------------------
# The host writes a few lines into what the model (and the final view) reads of a script: display placeholders
# (``[figure 1: 640×480 PNG]``), cap notes (``… truncated N chars …``) and notices (``TimeoutError: the script
# ran longer …``, ``SandboxRestarted: …``, ``SandboxCrashed: …``, ``WorkspaceFull: …``). Everything else comes
# from the sandbox (prints, tool data the script printed, tracebacks) and may imitate them, so every untrusted
# line that starts like a host note (after blanks, invisible characters and control sequences, in full-width
# forms too) is tagged UNTRUSTED_TAG: a line that starts like a note and has no tag is the host's.

#: Put before an untrusted line that looks like a host note.
UNTRUSTED_TAG = "(script output) "

_INVISIBLE = (  # possessive: a run of blanks and controls is never backtracked into
    r"(?:" + _CONTROLS.pattern + r"|[\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u206f"
    r"\u3164\ufeff])*+"
)
_NOTE_START = (
    r"(?:[\[［]\s*(?:figure|display|image)\b"  # display placeholders
    r"|(?:…|⋯|\.\.\.)\s*(?:truncated|[\d,]+\s+more)"  # cap notes
    r"|\(the script printed nothing\)"
    r"|(?:TimeoutError|SandboxRestarted|SandboxCrashed|WorkspaceFull|SandboxError)\s*:"  # notices
    r"|(?:WARNING|NOTE):\s*script\s+\d|⚠)"  # the final view's own lines
)
_ANYWHERE = re.compile(_NOTE_START, re.IGNORECASE)
_IMITATION = re.compile(_INVISIBLE + _NOTE_START, re.IGNORECASE)


#: Starts each host note while the output is assembled (a private-use character, removed from sandbox text).
HOST = "\ue000"


def mark_imitations(text: str) -> str:
    """``text`` with :data:`UNTRUSTED_TAG` before each line that starts like a host note, except the host's own
    (those starting with :data:`HOST`, which is then removed)."""
    if _ANYWHERE.search(text):
        # line by line (every break str.splitlines knows, as a reader would see them): linear in the text's size
        text = "".join(UNTRUSTED_TAG + line if _IMITATION.match(line) else line for line in text.splitlines(True))
    return text.replace(HOST, "")


class LiveTagger:
    """:func:`mark_imitations` for output that arrives in pieces (the live stream of a running script). Each
    line is passed on as soon as its start is decided: when the line ends, or once it is over :attr:`HOLD`
    characters; until then its start waits for the next piece or :meth:`flush`."""

    #: Characters of a line held at most before its start is decided.
    HOLD = 4096
    #: A line start over HOLD with fewer non-blank characters than this is tagged (it may still become a note).
    DECIDE = 40
    _BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # those of str.splitlines
    _LEAD = re.compile(_INVISIBLE)

    def __init__(self) -> None:
        self._held = ""  # the undecided start of the current line
        self._decided = False  # the current line's start was decided: the rest of it passes through

    def feed(self, text: str) -> str:
        """What may be shown of ``text`` now (tagged where needed)."""
        out: list[str] = []
        text = text.replace(HOST, "")
        while text:
            found = self._BREAKS.search(text)
            piece, text = (text[: found.end()], text[found.end() :]) if found else (text, "")
            if self._decided:
                out.append(piece)
            elif found is not None:
                out.append(self._decide(self._held + piece, ended=True))
            elif len(line := self._held + piece) > self.HOLD:
                out.append(self._decide(line, ended=False))
                self._decided = True
            else:
                self._held = line
            if found is not None:
                self._held, self._decided = "", False
        return "".join(out)

    def flush(self) -> str:
        """The held line start, decided as it is (at the end of the script)."""
        line, self._held, self._decided = self._held, "", False
        return self._decide(line, ended=True) if line else ""

    def _decide(self, line: str, ended: bool) -> str:
        self._held = ""
        lead = self._LEAD.match(line)
        undecidable = not ended and len("".join(line[lead.end() if lead else 0 :].split())) < self.DECIDE
        return UNTRUSTED_TAG + line if undecidable or _IMITATION.match(line) else line


strip_ansi = strip_controls  # tracebacks arrive coloured


def cap_text(text: str, limit: int, note_start: str = "") -> str:
    """``text`` if short enough, else its head and tail around a visible ``… truncated N chars`` note."""
    if len(text) <= limit:
        return text
    tail = min(2_000, limit // 4)
    head = limit - tail
    dropped = len(text) - head - tail
    return f"{text[:head]}\n{note_start}… truncated {dropped:,} chars …\n{text[len(text) - tail :]}"


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
    notices: list[str] = field(default_factory=list)  # the host's, after the output (timeout, restart, quota)

    def add_display(self, bundle: dict[str, Any]) -> bool:
        """Keep a rich output while the displays stay under ``hard_limit`` characters in all; else count it."""
        size = sum(len(v) if isinstance(v, str) else len(str(v)) for v in bundle.get("data", {}).values())
        if self.display_bytes + size > self.hard_limit or len(self.displays) >= MAX_DISPLAYS:
            self.dropped_displays += 1
            return False
        self.display_bytes += size
        self.displays.append(bundle)
        return True

    def add_note(self, text: str) -> None:
        """A line the host writes into the output (a display's placeholder)."""
        self.add(text, trusted=True)

    def add(self, text: str, trusted: bool = False) -> None:
        """Output of the script (untrusted: it may not start a host note, see :func:`mark_imitations`)."""
        text = HOST + text if trusted else text.replace(HOST, "")
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
            text += f"\n{HOST}… {self.dropped:,} more chars of output were dropped by the host …\n"
        if self.dropped_displays:
            text += f"\n{HOST}… {self.dropped_displays:,} more displays (figures, HTML) were dropped by the host …\n"
        if self.result_repr is not None:
            text += ("" if not text or text.endswith("\n") else "\n") + self.result_repr.replace(HOST, "")
        if self.traceback is not None:
            text += ("" if not text or text.endswith("\n") else "\n") + self.traceback.replace(HOST, "")
        for notice in self.notices:
            text += ("" if not text or text.endswith("\n") else "\n") + HOST + notice
        return mark_imitations(cap_text(text, limit, HOST)) if text else "(the script printed nothing)"


def record_output(
    msg: dict[str, Any],
    out: OutputCollector,
    on_output: Callable[[str], None] | None,
    on_display: Callable[[dict[str, Any]], None] | None,
    counts: collections.Counter[str],
) -> bool:
    """Record one IOPub message of the running script (local or gateway sandbox; its fields are untrusted);
    True when it says the kernel went idle. Malformed displays are counted in ``counts`` and dropped."""
    kind, content = msg.get("msg_type") or msg["header"].get("msg_type"), msg["content"]
    if kind == "stream":
        text = str(content.get("text", ""))
        out.add(text)
        if on_output:
            on_output(text)
    elif kind == "execute_result":
        data = content.get("data")
        out.result_repr = str(data.get("text/plain", "") if isinstance(data, dict) else "")[: out.hard_limit]
    elif kind == "error":
        out.traceback = strip_ansi("\n".join(map(str, content.get("traceback", []))))[: out.hard_limit]
    elif kind in ("display_data", "update_display_data"):
        data, metadata = content.get("data"), content.get("metadata")
        if not isinstance(data, dict):
            counts["malformed messages"] += 1
            return False
        bundle = {"data": data, "metadata": metadata if isinstance(metadata, dict) else {}}
        if out.add_display(bundle):
            out.add_note(describe_display(bundle["data"], len(out.displays)) + "\n")
            if on_display:
                on_display(bundle)
    elif kind == "status" and content.get("execution_state") == "idle":
        return True
    return False


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
