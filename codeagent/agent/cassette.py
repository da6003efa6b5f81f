"""Record / replay of model turns: a cassette file kept with the notebook, served through the real SDK.

A cassette is JSON. Each turn is the request the model saw (model, system, messages, tools; normalised, see
:func:`normalise_request`) and the Message it answered with::

    {"format": "codeagent-cassette/1", "source": "...", "volatile": [],
     "systems": {"system-1": [...]}, "toolsets": {"tools-1": [...]},
     "turns": [{"request": {"model": ..., "system": "system-1", "tools": "tools-1", "messages": [...]},
                "response": {"id": ..., "content": [...], "stop_reason": ..., "usage": {...}}}]}

``system`` and ``tools`` are stored once and referred to by name. The SDK is used end to end: a transport
given to ``anthropic.Anthropic(http_client=...)`` (``codeagent.agent.cassette_wire``) either wraps the real
one and saves each turn, or answers from the cassette with no key and no network. A request that matches no
turn raises :class:`CassetteMismatch` saying which turn differs and how.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anthropic

FORMAT = "codeagent-cassette/1"
SCRIPTED = "scripted, not recorded from a live model"
RECORDED = "recorded from a live model"
ABOUT = (
    "Model turns for codeagent's record/replay: each turn is the request the model saw (normalised) and the "
    "message it answered with. Replay serves them with no key and no network; the scripts still run."
)
Mode = Literal["record", "replay"]
MODES = ("auto", "record", "replay", "off")

#: Masked in message text before comparing: what differs between runs without meaning anything.
DEFAULT_VOLATILE = (
    r"0x[0-9a-fA-F]{6,}",  # memory addresses in reprs: <object at 0x7f…>
    r"(?<=Cell In\[)\d+(?=\])",  # the sandbox's execution counter in tracebacks
    r"(?<=codeagent-)(?:ws-)?[A-Za-z0-9_]{8}\b",  # random sandbox temp directories
    r"\d+×\d+(?= PNG\])",  # pixel size of a figure drawn in the sandbox (depends on the fonts installed)
)
MASK = "…"
_TOOL_ID_KEYS = ("id", "tool_use_id")
_SNIPPET = 60


class CassetteError(RuntimeError):
    """A cassette cannot be used (missing, unreadable, or a request it does not hold)."""


class CassetteMismatch(CassetteError):
    """A request that no recorded turn matches. The message says which turn differs and how."""


# -- normalising and comparing requests ------------------------------------------------------------------


def normalise_request(body: dict[str, Any], volatile: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The model-visible parts of a request (model, system, messages, tools), ready to compare.

    ``cache_control`` is dropped (it changes billing, not what the model sees); tool_use ids become
    ``toolu_1``, ``toolu_2``… in order of appearance (the API makes them up, a replay echoes them);
    memory addresses, traceback cell counters, sandbox temp names and any ``volatile`` patterns are masked
    in message text. Everything else must match exactly: a different question, tool result, docstring,
    system prompt or model is a real divergence.
    """
    patterns = [re.compile(p) for p in (*DEFAULT_VOLATILE, *volatile)]
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    ids: dict[str, str] = {}
    messages = [_normalise_message(m, ids, patterns) for m in body.get("messages", [])]
    return {
        "model": body.get("model"),
        "system": _drop_cache_control(system or []),
        "tools": _drop_cache_control(body.get("tools") or []),
        "messages": messages,
    }


def _drop_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_drop_cache_control(v) for v in value]
    return value


def _mask(text: str, patterns: list[re.Pattern[str]]) -> str:
    for pattern in patterns:
        text = pattern.sub(MASK, text)
    return text


def _normalise_message(message: dict[str, Any], ids: dict[str, str], patterns: list[re.Pattern[str]]) -> Any:
    content = message.get("content")
    if isinstance(content, str):
        content = _mask(content, patterns)
    elif isinstance(content, list):
        content = [_normalise_block(b, ids, patterns) for b in _drop_cache_control(content)]
    return {"role": message.get("role"), "content": content}


def _normalise_block(block: Any, ids: dict[str, str], patterns: list[re.Pattern[str]]) -> Any:
    if not isinstance(block, dict):
        return block
    block = dict(block)
    for key in _TOOL_ID_KEYS:
        if key in block and block.get("type") in ("tool_use", "tool_result", "server_tool_use"):
            block[key] = ids.setdefault(str(block[key]), f"toolu_{len(ids) + 1}")
    if isinstance(block.get("text"), str):
        block["text"] = _mask(block["text"], patterns)
    if block.get("type") == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            block["content"] = _mask(inner, patterns)
        elif isinstance(inner, list):
            block["content"] = [_normalise_block(b, ids, patterns) for b in inner]
    return block


def fingerprint(request: dict[str, Any]) -> str:
    """A stable hash of a normalised request."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def explain_difference(expected: dict[str, Any], got: dict[str, Any]) -> str:
    """How a request differs from a recorded one, in one sentence (both normalised)."""
    if expected["model"] != got["model"]:
        return f"the model differs from the recording: expected {expected['model']!r} got {got['model']!r}"
    if expected["tools"] != got["tools"]:
        return _tools_difference(expected["tools"], got["tools"])
    if expected["system"] != got["system"]:
        return "the system prompt differs from the recording (codeagent's prompt or a tool's stub changed): " + (
            _text_difference(_system_text(expected["system"]), _system_text(got["system"]))
        )
    return _messages_difference(expected["messages"], got["messages"])


def _system_text(blocks: list[Any]) -> str:
    return "\n".join(str(b.get("text", b)) if isinstance(b, dict) else str(b) for b in blocks)


def _tools_difference(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str:
    before = {str(t.get("name")): t for t in expected}
    after = {str(t.get("name")): t for t in got}
    if set(before) != set(after):
        added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
        parts = [
            f"{verb} {', '.join(map(str, names))}" for verb, names in (("added", added), ("removed", removed)) if names
        ]
        return "the tools offered differ from the recording: " + "; ".join(parts)
    for name, tool in after.items():
        if tool != before[name]:
            return f"the definition of tool {name!r} differs from the recording: " + _text_difference(
                json.dumps(before[name], sort_keys=True), json.dumps(tool, sort_keys=True)
            )
    return "the order of the tools differs from the recording"


def _messages_difference(expected: list[Any], got: list[Any]) -> str:
    for index, (e, g) in enumerate(zip(expected, got, strict=False)):
        if e == g:
            continue
        where = f"message {index + 1} ({g.get('role')})"
        if e.get("role") != g.get("role"):
            return f"{where}: the role differs from the recording: expected {e.get('role')!r} got {g.get('role')!r}"
        ec, gc = _blocks(e.get("content")), _blocks(g.get("content"))
        for eb, gb in zip(ec, gc, strict=False):
            if eb != gb:
                return f"the {_block_kind(gb, g.get('role'))} differs from the recording: " + _text_difference(
                    _block_text(eb), _block_text(gb)
                )
        return f"{where} has {len(gc)} content block(s), the recording {len(ec)}: " + _text_difference(
            _block_text_all(ec), _block_text_all(gc)
        )
    if len(got) > len(expected):
        extra = got[len(expected)]
        blocks = _blocks(extra.get("content")) or [{"type": "text", "text": ""}]
        kind = _block_kind(blocks[0], extra.get("role"))
        return f"the request continues past the recording with a {kind}: {_snippet(_block_text_all(blocks), 0)!r}"
    return f"the request has {len(got)} messages, the recording {len(expected)}"


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _block_kind(block: Any, role: Any) -> str:
    kind = block.get("type") if isinstance(block, dict) else type(block).__name__
    if kind == "text":
        return "user message" if role == "user" else "assistant text"
    if kind == "tool_use":
        return f"tool_use input of {block.get('name')!r}"
    return str(kind)


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return str(block)
    if block.get("type") == "tool_result":
        inner = block.get("content")
        text = inner if isinstance(inner, str) else _block_text_all(_blocks(inner))
        return ("[is_error] " if block.get("is_error") else "") + text
    if block.get("type") == "tool_use":
        return json.dumps(block.get("input"), ensure_ascii=False, sort_keys=True)
    if isinstance(block.get("text"), str):
        return block["text"]
    return json.dumps(block, ensure_ascii=False, sort_keys=True)


def _block_text_all(blocks: list[Any]) -> str:
    return "\n".join(_block_text(b) for b in blocks)


def _text_difference(expected: str, got: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), min(len(expected), len(got)))
    return f"expected {_snippet(expected, at)!r} got {_snippet(got, at)!r} (first difference at character {at})"


def _snippet(text: str, at: int) -> str:
    start = max(0, at - _SNIPPET // 3)
    piece = text[start : start + _SNIPPET]
    return ("…" if start else "") + piece + ("…" if start + _SNIPPET < len(text) else "")


def _question(request: dict[str, Any]) -> str:
    """The newest question typed by the user (a string user message), shortened."""
    for message in reversed(request["messages"]):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            text = " ".join(message["content"].split())
            return text if len(text) <= 60 else text[:57] + "..."
    return ""


# -- the cassette ------------------------------------------------------------------------------------------


@dataclass
class Turn:
    """One recorded model turn: the normalised request and the Message the model answered with."""

    request: dict[str, Any]
    response: dict[str, Any]


@dataclass
class Cassette:
    """Turns kept in a JSON file next to the notebook. ``replayed`` counts turns served so far."""

    path: Path
    turns: list[Turn] = field(default_factory=list)
    source: str = RECORDED
    volatile: list[str] = field(default_factory=list)
    replayed: int = 0
    _served: list[int] = field(default_factory=list, repr=False)
    _index: dict[str, list[int]] = field(default_factory=dict, repr=False)

    # -- files

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        """Read a cassette; CassetteError if it is missing or malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CassetteError(f"No cassette at {path}: record one first with --record {path}.") from None
        except (OSError, ValueError) as e:
            raise CassetteError(f"Cannot read the cassette {path}: {e}") from None
        return cls.from_json(data, path)

    @classmethod
    def from_json(cls, data: Any, path: str | os.PathLike[str]) -> Cassette:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CassetteError(f'{path} is not a codeagent cassette (expected "format": "{FORMAT}").')
        systems, toolsets = data.get("systems", {}), data.get("toolsets", {})
        turns = []
        for n, raw in enumerate(data.get("turns", []), 1):
            try:
                request = dict(raw["request"])
                for key, table in (("system", systems), ("tools", toolsets)):
                    if isinstance(request[key], str):
                        request[key] = table[request[key]]
                turns.append(Turn(request, dict(raw["response"])))
            except (KeyError, TypeError) as e:
                raise CassetteError(f"{path}: turn {n} is malformed (missing {e}).") from None
        cassette = cls(Path(path), source=str(data.get("source", "")), volatile=list(data.get("volatile", [])))
        for turn in turns:
            cassette._add(turn)
        return cassette

    def to_json(self) -> dict[str, Any]:
        """The file's content: system prompts and tool lists stored once, referred to by name."""
        systems: dict[str, Any] = {}
        toolsets: dict[str, Any] = {}
        turns = []
        for turn in self.turns:
            request = dict(turn.request)
            request["system"] = _shared_name(systems, "system", turn.request["system"])
            request["tools"] = _shared_name(toolsets, "tools", turn.request["tools"])
            turns.append({"request": request, "response": turn.response})
        return {
            "format": FORMAT,
            "about": ABOUT,
            "source": self.source,
            "volatile": self.volatile,
            "systems": systems,
            "toolsets": toolsets,
            "turns": turns,
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.path)

    # -- recording and serving

    def _add(self, turn: Turn) -> None:
        turn.request = normalise_request(turn.request, self.volatile)
        self._index.setdefault(fingerprint(turn.request), []).append(len(self.turns))
        self.turns.append(turn)
        self._served.append(0)

    def record(self, body: dict[str, Any], response: dict[str, Any]) -> None:
        """Add the turn ``body`` → ``response`` and save the file."""
        self._add(Turn(copy.deepcopy(body), _drop_cache_control(response)))
        self.save()

    def serve(self, body: dict[str, Any]) -> dict[str, Any]:
        """The recorded response for this request, or CassetteMismatch saying how it differs."""
        request = normalise_request(body, self.volatile)
        matches = self._index.get(fingerprint(request), [])
        if not matches:
            raise CassetteMismatch(self._mismatch_message(request))
        index = next((i for i in matches if not self._served[i]), matches[-1])
        self._served[index] += 1
        self.replayed += 1
        return copy.deepcopy(self.turns[index].response)

    def _mismatch_message(self, request: dict[str, Any]) -> str:
        asked = _question(request)
        about = f' (question "{asked}")' if asked else ""
        if not self.turns:
            return f"{self.path.name} holds no turns; record them with --record {self.path}."
        index = self._closest(request)
        how = explain_difference(self.turns[index].request, request)
        return (
            f"turn {index + 1}{about}: {how}. Replay stopped: if the change is intended, record the cassette "
            f"again (--record {self.path.name})."
        )

    def _closest(self, request: dict[str, Any]) -> int:
        """The recorded turn this request was most likely meant to match."""

        def score(i: int) -> tuple[int, int, int, int, int]:
            rec = self.turns[i].request
            prefix = 0
            for a, b in zip(rec["messages"], request["messages"], strict=False):
                if a != b:
                    break
                prefix += 1
            same_len = int(len(rec["messages"]) == len(request["messages"]))
            same_setup = int(rec["model"] == request["model"]) + int(rec["tools"] == request["tools"])
            return (prefix, same_len, same_setup, int(not self._served[i]), -i)

        return max(range(len(self.turns)), key=score)


def _shared_name(table: dict[str, Any], prefix: str, value: Any) -> str:
    for name, existing in table.items():
        if existing == value:
            return name
    name = f"{prefix}-{len(table) + 1}"
    table[name] = value
    return name


# -- choosing a cassette for a call ------------------------------------------------------------------------


class CassetteShelf:
    """The cassettes one notebook kernel uses, by path: a recording grows across calls, a replay keeps its place."""

    def __init__(self) -> None:
        self._recording: dict[Path, Cassette] = {}
        self._replaying: dict[Path, tuple[float, Cassette]] = {}

    def choose(
        self, *, record: str | None = None, replay: str | None = None, path: str | None = None, mode: str = "auto"
    ) -> tuple[Mode, Cassette] | None:
        """Per-call ``record``/``replay`` paths win over the configured ``path`` and ``mode``.

        ``auto`` replays a cassette that exists and records one that does not (and keeps recording it for
        the rest of the session). ``off`` (or no path) means no cassette.
        """
        if record and replay:
            raise CassetteError("use --record or --replay, not both")
        if record:
            return "record", self.recording(Path(record))
        if replay:
            return "replay", self.replaying(Path(replay))
        if mode not in MODES:
            raise CassetteError(f"CodeAgent.cassette_mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not path or mode == "off":
            return None
        where = Path(path).resolve()
        if mode == "record" or (mode == "auto" and (where in self._recording or not where.exists())):
            return "record", self.recording(where)
        return "replay", self.replaying(where)

    def recording(self, path: Path) -> Cassette:
        """The cassette being recorded at ``path`` this session (a new, empty one on first use)."""
        path = path.resolve()
        if path not in self._recording:
            self._recording[path] = Cassette(path, source=RECORDED)
        return self._recording[path]

    def replaying(self, path: Path) -> Cassette:
        """The cassette at ``path``, loaded again if the file changed since."""
        path = path.resolve()
        self._recording.pop(path, None)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        cached = self._replaying.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, Cassette.load(path))
            self._replaying[path] = cached
        return cached[1]


def make_cassette_client(
    mode: Mode, cassette: Cassette, *, max_retries: int = 2, **client_options: Any
) -> anthropic.Anthropic:
    """A real ``anthropic.Anthropic`` whose HTTP goes through the cassette. Replay needs no API key."""
    from codeagent.agent.cassette_wire import RecordingTransport, ReplayTransport
    from codeagent.agent.client import MissingAPIKey, make_client

    if mode == "replay":
        return make_client(
            api_key="replay-needs-no-key", transport=ReplayTransport(cassette), max_retries=0, **client_options
        )
    try:
        return make_client(transport=RecordingTransport(cassette), max_retries=max_retries, **client_options)
    except MissingAPIKey as e:
        raise MissingAPIKey(
            f"{e} (Recording the cassette {cassette.path.name} calls the live API; to run offline, replay an "
            f"existing cassette with --replay {cassette.path.name}.)"
        ) from None
