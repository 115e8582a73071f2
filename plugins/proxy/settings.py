from pydantic import BaseModel, Field


class ProxySettings(BaseModel):
    default_model: str = Field(default="mock/echo", description="model of requests that name none")
    aliases: dict[str, str] = Field(
        default_factory=dict, description="model names clients may use, e.g. {fast = 'groq/llama-3.1-8b'}"
    )
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="models tried in turn when one fails with a connect error, timeout, 429 or 5xx",
    )
    retries: int = Field(
        default=1, ge=0, le=10, description="extra attempts on the same model before falling back"
    )
    retry_backoff_seconds: float = Field(default=0.25, ge=0, description="first backoff; doubles per attempt")
    max_retry_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="longest upstream Retry-After honoured by waiting; longer ones fall back",
    )
