"""The generic Tool protocol and the registry that calls tools safely (schema, validation, cache,
timeout, stats). Product tools live with their product (the gift tools in `recursa.gift.tools`)."""

from recursa.tools.base import Tool, ToolResult, tool
from recursa.tools.registry import ToolRegistry

__all__ = ["Tool", "ToolRegistry", "ToolResult", "tool"]
