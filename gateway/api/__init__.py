"""The HTTP API (FastAPI): request and response schemas, routes, error mapping."""
