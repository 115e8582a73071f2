from pydantic import BaseModel


class BucketOut(BaseModel):
    bucket: str
    limit: int
    remaining: int
    reset_seconds: float
    requests_per_minute: int
    store: str
    upstream: dict[str, dict[str, str]] = {}
