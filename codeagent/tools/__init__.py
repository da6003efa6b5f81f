"""Tools: the ``@tool`` registry, JSON Schema from signatures, stubs shown to the model, dispatch."""

from codeagent.tools.local import ToolError, notebook_tool, notebook_tools
from codeagent.tools.registry import Tool, ToolArgumentError, ToolRegistry, default_registry, make_tool, tool

__all__ = [
    "Tool",
    "ToolArgumentError",
    "ToolError",
    "ToolRegistry",
    "default_registry",
    "make_tool",
    "notebook_tool",
    "notebook_tools",
    "tool",
]
