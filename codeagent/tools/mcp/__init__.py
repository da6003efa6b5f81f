"""MCP servers as tool sources. Importing this is cheap: the ``mcp`` SDK loads when a server starts."""

from codeagent.tools.mcp.connection import McpServerError, McpUnavailable
from codeagent.tools.mcp.servers import McpServer, McpServers, add_mcp_server, default_servers

__all__ = ["McpServer", "McpServerError", "McpServers", "McpUnavailable", "add_mcp_server", "default_servers"]
