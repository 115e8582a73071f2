from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mnemogate.core.contracts import ExternalMcpServer

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _json_list(value: Any) -> Any:
    """Server lists come from TOML as arrays of tables and from the environment as JSON."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return value


class ExternalServerConfig(BaseModel):
    """An external MCP server: a command speaking stdio, or a streamable-HTTP URL."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="routed as /api/mcp-gateway/<name>/rpc")
    command: str | None = Field(default=None, description="executable started as a stdio MCP server")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment (the rest of ours is not passed on)"
    )
    cwd: str | None = None
    url: str | None = Field(default=None, description="streamable-HTTP endpoint, e.g. http://host/mcp")
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every HTTP request")
    timeout_seconds: float | None = Field(default=None, gt=0, description="default: the gateway's")
    max_concurrency: int | None = Field(default=None, ge=1, description="default: the gateway's")

    @model_validator(mode="after")
    def _one_transport(self) -> ExternalServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"server {self.name!r} needs either command or url")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"server {self.name!r}: url must start with http:// or https://")
        return self

    def describe(self) -> ExternalMcpServer:
        return ExternalMcpServer(
            command=self.command,
            args=tuple(self.args),
            env=dict(self.env),
            cwd=self.cwd,
            url=self.url,
            headers=dict(self.headers),
            timeout_seconds=self.timeout_seconds,
            max_concurrency=self.max_concurrency,
        )


class McpGatewaySettings(BaseModel):
    servers: Annotated[list[ExternalServerConfig], BeforeValidator(_json_list)] = Field(
        default_factory=list, description="external MCP servers (stdio command or streamable-HTTP URL)"
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, description="longest a call may take, waiting for a free slot included"
    )
    max_concurrency: int = Field(default=16, ge=1, description="calls in flight per server")
    connect_timeout_seconds: float = Field(
        default=30.0, gt=0, description="longest an external server may take to start and initialize"
    )
    ping_interval_seconds: float = Field(
        default=30.0, gt=0, description="how often a connected external server is pinged"
    )
    restart_backoff_seconds: float = Field(
        default=0.5, gt=0, description="first wait before reconnecting a failed external server"
    )
    restart_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="the wait doubles after each failure up to this"
    )
    log_calls: bool = Field(default=True, description="keep a log of tool calls (GET /api/mcp-gateway/calls)")
    log_arguments_chars: int = Field(
        default=2000, ge=0, description="tool arguments kept in the log, as JSON, cut to this length"
    )
    flush_interval_seconds: float = Field(
        default=0.5, gt=0, description="how often the call log is written (in batches, off the call path)"
    )
