from pydantic import BaseModel, Field


class JsonQuerySettings(BaseModel):
    max_document_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1,
        description="largest file queried whole (stream_query reads any size item by item)",
    )
    max_results: int = Field(default=1000, ge=1, description="most matches or items one call returns")
    schema_sample: int = Field(
        default=1000, ge=1, description="array items inspected per array by infer_schema"
    )
