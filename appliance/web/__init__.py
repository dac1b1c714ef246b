"""The local web page: status dashboard, configuration forms generated from the schema, peer
tests, operations, login, a JSON API under /api/v1/, /api/health and /metrics.

`component.WebComponent` runs it (FastAPI on uvicorn) inside the supervisor; `app.create_app`
builds the application from a `context.WebContext`.
"""
