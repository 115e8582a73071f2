"""Usage exports: the request log and sessions as CSV or JSON, streamed and filterable."""
