from pydantic import BaseModel, Field


class ContextCompressionSettings(BaseModel):
    use_compress_plugin: bool = Field(
        default=True,
        description="use the compress plugin's engine when it is running (else the built-in one)",
    )
    max_input_chars: int = Field(default=2_000_000, ge=1, description="largest text or message list accepted")
