from __future__ import annotations

import json
import os
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _json_list(value: Any) -> Any:
    """Provider lists come from TOML as arrays of tables and from the environment as JSON."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return value


class ModelConfig(BaseModel):
    """A model the provider serves; prices in USD per million tokens (default: the catalogue's)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    context_window: int | None = Field(default=None, ge=1)
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)


def _models(value: Any) -> Any:
    value = _json_list(value)
    if isinstance(value, list):
        return [{"id": item} if isinstance(item, str) else item for item in value]
    return value


class UpstreamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN, description="the provider's name: models are addressed name/model"
    )
    base_url: str = Field(description="API root, e.g. https://api.openai.com/v1")
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(default=None, description="environment variable holding the key")
    models: Annotated[list[ModelConfig], BeforeValidator(_models)] = Field(
        default_factory=list, description="served models (ids or tables); empty: any model, by name/model"
    )
    catalogue: str | None = Field(
        default=None, description="built-in price catalogue for known models (openai, anthropic)"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers sent upstream")
    timeout_seconds: float = Field(default=600.0, gt=0, description="longest wait for the next bytes")
    connect_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    def key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class AnthropicConfig(UpstreamConfig):
    name: str = Field(default="anthropic", pattern=NAME_PATTERN)
    base_url: str = "https://api.anthropic.com"
    catalogue: str | None = "anthropic"
    version: str = Field(default="2023-06-01", description="anthropic-version header")
    default_max_tokens: int = Field(default=4096, ge=1, description="max_tokens when the request has none")


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    name: str = Field(default="mock", pattern=NAME_PATTERN)
    latency_ms: float = Field(default=0.0, ge=0, description="delay before the first token")
    tokens_per_second: float = Field(default=0.0, ge=0, description="streaming pace; 0: as fast as possible")
    replies: list[str] = Field(default_factory=list, description="replies of mock/scripted, in turn")


class ProvidersSettings(BaseModel):
    openai_compatible: Annotated[list[UpstreamConfig], BeforeValidator(_json_list)] = Field(
        default_factory=list, description="OpenAI-compatible APIs (OpenAI, Ollama, vLLM, OpenRouter, Groq...)"
    )
    anthropic: Annotated[list[AnthropicConfig], BeforeValidator(_json_list)] = Field(
        default_factory=list, description="Anthropic Messages API accounts"
    )
    mock: MockConfig = Field(default_factory=MockConfig, description="the offline mock provider")
