from pydantic import BaseModel


class ModelOut(BaseModel):
    id: str
    provider: str
    model: str
    context_window: int | None
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    enabled: bool


class ProviderOut(BaseModel):
    name: str
    kind: str
    models: int
    accepts_any_model: bool
    rate_limits: dict[str, str]
