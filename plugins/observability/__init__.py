"""Prometheus metrics at /metrics and OpenTelemetry tracing when configured."""
