"""Tool specs on their way into the sandbox's setup code: JSON, zlib-compressed, base85 text.

A thousand MCP tools are ~700 KB of JSON; as a string literal in the setup cell, IPython's tokenizer alone took
most of a 1.4 s install. Packed they are ~35 KB (specs repeat themselves a lot). Only the host packs; the
sandbox unpacks what the host sent.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any


def pack_specs(specs: list[dict[str, Any]]) -> str:
    return base64.b85encode(zlib.compress(json.dumps(specs).encode(), 6)).decode("ascii")


def unpack_specs(packed: str) -> list[dict[str, Any]]:
    specs = json.loads(zlib.decompress(base64.b85decode(packed)))
    if not isinstance(specs, list):
        raise ValueError("tool specs must be a list")
    return specs


def install_code(address: str, token: str, specs: list[dict[str, Any]], max_request_bytes: int) -> str:
    """The host's setup code that defines the tools' stubs in the sandbox (``guest/runtime.install``), the specs
    packed; the same for a local sandbox (``address`` its bridge socket) and one behind a gateway (``stdin:``)."""
    return (
        "import codeagent.sandbox.guest.runtime as _ca_runtime\n"
        f"_ca_runtime.install({address!r}, {token!r}, _ca_runtime.unpack_specs({pack_specs(specs)!r}), globals(), "
        f"max_request_bytes={max_request_bytes})\n"
        "del _ca_runtime\n"
    )
