from typing import Literal

from pydantic import BaseModel, Field


class ObservabilitySettings(BaseModel):
    tracing: bool = Field(default=False, description="export OpenTelemetry traces (needs the otel extra)")
    trace_exporter: Literal["otlp", "console"] = "otlp"
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint; default: OTEL_EXPORTER_OTLP_* variables"
    )
    service_name: str = "mnemogate"
