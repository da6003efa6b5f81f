"""``python -m codeagent serve``: the scripted Messages API server on 127.0.0.1, to try codeagent without a key.

With no ``--turns`` file it plays a small model that needs no script: asked a question, it runs a script listing
the notebook's tools (``name(signature)``), then answers with what that script printed. ``--turns FILE`` plays
the turns of a JSON list first (``{"code": "..."}`` runs a script, ``{"text": "..."}`` answers).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from codeagent.testing.messages_server import MessagesServer, Turn, TurnItem, code_turn, text_turn

LIST_TOOLS = """\
import inspect
tools = {n: f for n, f in globals().items() if getattr(f, "_codeagent_stub", False)}
for name, f in sorted(tools.items()):
    doc = (f.__doc__ or "").strip().splitlines()
    print(f"{name}{str(inspect.signature(f)).replace(chr(39), '')}: {doc[0] if doc else ''}")
print(f"{len(tools)} tool(s)")
"""


def tool_lister(body: dict[str, Any]) -> Turn:
    """A question gets the tool-listing script; the script's output gets an answer quoting it."""
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    if isinstance(content, list) and content and content[0].get("type") == "tool_result":
        printed = content[0].get("content")
        text = printed if isinstance(printed, str) else json.dumps(printed)
        return text_turn(f"(scripted server, no model) Your notebook's tools:\n\n```\n{text.strip()}\n```")
    return code_turn(LIST_TOOLS, text="(scripted server) Listing the tools with one script.")


def load_turns(path: Path) -> list[TurnItem]:
    """Turns from a JSON list: ``{"code": str, "text"?: str}`` or ``{"text": str}``."""
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of turns")
    turns: list[TurnItem] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            turns.append(code_turn(item["code"], text=item.get("text")))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            turns.append(text_turn(item["text"]))
        else:
            raise ValueError(f'{path}: turn {i} needs "code" or "text"')
    return turns


def main(argv: list[str] | None = None, *, stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codeagent serve", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv), stop=stop)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765; 0 picks one)")
    parser.add_argument("--turns", type=Path, help="JSON list of turns to play first")


def run(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    try:
        turns = load_turns(args.turns) if args.turns else []
    except (OSError, ValueError) as e:
        print(f"codeagent serve: {e}", file=sys.stderr)
        return 2
    try:
        server = MessagesServer(turns, port=args.port, fallback=tool_lister).start()
    except OSError as e:
        print(f"codeagent serve: cannot listen on 127.0.0.1:{args.port}: {e}", file=sys.stderr)
        return 1
    print(
        f"codeagent: scripted Messages API server on {server.url} (not a model; Ctrl-C stops it).\n"
        f"In a notebook:  %codeagent --base-url {server.url} What tools do I have?",
        flush=True,
    )
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
