"""The memory graph, embedding projections, activation traces, learning time series, gateway
usage and the live dashboard at ``/dashboard``."""
