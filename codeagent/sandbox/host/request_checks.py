"""A bridge request's checks (token, JSON head, the script it comes from), shared by the socket bridge and the
stdin-channel bridge of gateway sandboxes."""

from __future__ import annotations

import hmac
import json
from typing import Any

from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.messages import BridgeRequest, Reply, error_reply

CELL_REFUSALS = ("this call comes from a script", "this call does not say which script")


def parse_request(parts: list[Any], token: bytes, expected_cell: str | None) -> BridgeRequest | Reply:
    """A request frame checked (token, head, cell), or the error reply saying why it is refused.

    Shared by the socket bridge and the stdin-channel bridge of gateway sandboxes."""
    if len(parts) < 3:
        return error_reply(None, "ProtocolError", "malformed request: expected token, head and body")
    if not hmac.compare_digest(bytes(parts[0]), token):
        return error_reply(None, "PermissionError", "bad bridge token")
    try:
        head = json.loads(codec.text(parts[1]))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return error_reply(None, "ValueError", "request head is not valid JSON")
    if not isinstance(head, dict):
        return error_reply(None, "ValueError", "request head must be a JSON object")
    req_id = head.get("id")
    if req_id is not None and type(req_id) is not int:
        return error_reply(None, "ValueError", "request id must be an integer")
    cell = head.get("cell")
    if expected_cell is not None and cell != expected_cell:
        return error_reply(
            req_id,
            "PermissionError",
            (
                "this call comes from a script that has already finished (e.g. a thread it left running); "
                if cell is not None
                else "this call does not say which script made it; "
            )
            + "only the running script may call tools",
        )
    return BridgeRequest(head, parts[2], parts[3:])
