from typing import Literal

from pydantic import BaseModel, Field

Mode = Literal["inject", "capture"]


class MemoryBridgeSettings(BaseModel):
    default_modes: list[Mode] = Field(
        default_factory=list, description="modes of every request (the header can switch them off)"
    )
    tenant_modes: dict[str, list[Mode]] = Field(default_factory=dict, description="modes by tenant")
    key_modes: dict[str, list[Mode]] = Field(default_factory=dict, description="modes by API key id")
    inject_budget_tokens: int = Field(default=400, ge=16, le=32_000, description="tokens injected at most")
    inject_k: int = Field(default=5, ge=1, le=50, description="memories recalled per memory type")
    inject_types: list[str] = Field(
        default_factory=lambda: ["semantic", "procedural", "episodic"],
        description="memory types recalled for injection",
    )
    inject_min_score: float = Field(
        default=0.0, ge=0, description="recalled memories below this are left out"
    )
    capture_mcp_tool_calls: bool = Field(
        default=False,
        description="capture every MCP tool call (otherwise only those of sessions that capture)",
    )
    captured_sessions_remembered: int = Field(
        default=10_000, ge=0, description="sessions whose MCP tool calls are captured, most recent kept"
    )
