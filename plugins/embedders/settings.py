from pydantic import BaseModel, Field, SecretStr


class EmbeddersSettings(BaseModel):
    hashing_dimensions: int = Field(default=384, ge=8, le=8192, description="width of the hashing embedder")
    minilm_threads: int = Field(
        default=0, ge=0, description="ONNX Runtime threads for MiniLM (0: one per core)"
    )
    minilm_max_tokens: int = Field(default=256, ge=8, le=512, description="longer texts are truncated")
    minilm_batch: int = Field(default=32, ge=1, description="texts per ONNX Runtime call")
    remote_url: str | None = Field(
        default=None, description="base URL of an OpenAI-compatible API, e.g. http://localhost:11434/v1"
    )
    remote_model: str = Field(default="text-embedding-3-small", description="model sent to /embeddings")
    remote_api_key: SecretStr | None = Field(default=None, description="sent as a bearer token")
    remote_dimensions: int | None = Field(default=None, ge=1, description="vector width the model returns")
    remote_batch: int = Field(default=128, ge=1, description="texts per /embeddings request")
    remote_timeout: float = Field(default=30.0, gt=0, description="seconds per request")
