"""Tools agents can call: the Tool protocol, a safe calling registry, and the gift tools."""

from recursa.tools.base import Tool, ToolResult, tool
from recursa.tools.gift import GIFT_TOOL_NAMES, RETAILERS, GiftCatalog, gift_tools
from recursa.tools.registry import ToolRegistry

__all__ = [
    "GIFT_TOOL_NAMES",
    "RETAILERS",
    "GiftCatalog",
    "Tool",
    "ToolRegistry",
    "ToolResult",
    "gift_tools",
    "tool",
]
