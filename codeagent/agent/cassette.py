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
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anthropic

from codeagent.agent.cassette_match import (  # noqa: F401 - re-exported: part of the cassette's API
    DEFAULT_VOLATILE,
    MASK,
    drop_cache_control,
    explain_difference,
    fingerprint,
    normalise_request,
    question_of,
)

FORMAT = "codeagent-cassette/1"
SCRIPTED = "scripted, not recorded from a live model"
RECORDED = "recorded from a live model"
ABOUT = (
    "Model turns for codeagent's record/replay: each turn is the request the model saw (normalised) and the "
    "message it answered with. Replay serves them with no key and no network; the scripts still run."
)
Mode = Literal["record", "replay"]
MODES = ("auto", "record", "replay", "off")


class CassetteError(RuntimeError):
    """A cassette cannot be used (missing, unreadable, or a request it does not hold)."""


class CassetteMismatch(CassetteError):
    """A request that no recorded turn matches. The message says which turn differs and how."""


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
        self._add(Turn(copy.deepcopy(body), drop_cache_control(response)))
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
        asked = question_of(request)
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
