"""Request ids, access log, security headers, CORS and the request body limit."""
