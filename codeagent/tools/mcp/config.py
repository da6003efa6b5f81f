"""``.mcp.json`` (Claude Code) and Claude Desktop's config: the ``mcpServers`` table, with ``${VAR}`` and
``${VAR:-default}`` expanded from the environment."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class McpConfigError(ValueError):
    """The config file cannot be used; the message says where and why."""


def expand(value: str, where: str, environ: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise McpConfigError(f"{where}: ${{{name}}} is not set (set it, or write ${{{name}:-default}})")

    return _VAR.sub(one, value)


def server_entries(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: keyword arguments of add_mcp_server}`` from a config file."""
    environ = os.environ if environ is None else environ
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise McpConfigError(f"cannot read the MCP config {where}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise McpConfigError(f"the MCP config {where} is not JSON: {e}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f'the MCP config {where} has no "mcpServers" object')
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in servers.items():
        here = f"{where}: mcpServers.{name}"
        if not isinstance(entry, dict):
            raise McpConfigError(f"{here} must be an object")
        kind = entry.get("type") or ("http" if "url" in entry else "stdio")
        if kind == "stdio":
            command = entry.get("command")
            if not isinstance(command, str) or not command:
                raise McpConfigError(f'{here}: a stdio server needs "command"')
            args = entry.get("args") or []
            env = entry.get("env") or {}
            if not isinstance(args, list) or not isinstance(env, dict):
                raise McpConfigError(f'{here}: "args" must be a list and "env" an object')
            kwargs: dict[str, Any] = {
                "command": expand(command, here, environ),
                "args": [expand(str(a), here, environ) for a in args],
                "env": {str(k): expand(str(v), here, environ) for k, v in env.items()},
            }
            if isinstance(entry.get("cwd"), str):
                kwargs["cwd"] = expand(entry["cwd"], here, environ)
        elif kind in ("http", "streamable-http"):
            url = entry.get("url")
            headers = entry.get("headers") or {}
            if not isinstance(url, str) or not isinstance(headers, dict):
                raise McpConfigError(f'{here}: an http server needs "url" (and "headers" as an object)')
            kwargs = {
                "url": expand(url, here, environ),
                "headers": {str(k): expand(str(v), here, environ) for k, v in headers.items()},
            }
        else:
            raise McpConfigError(f'{here}: type {kind!r} is not supported (use "stdio" or "http")')
        entries[str(name)] = kwargs
    return entries


def resolve(path: str, base: str | Path) -> Path:
    """A config path; a relative one is relative to the notebook's directory ``base``."""
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else Path(base) / p
