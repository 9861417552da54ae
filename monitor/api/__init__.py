"""The HTTP API: config CRUD, results, status and the dashboard (CONTRACTS.md section 5; docs/api.md).

One ASGI application, built by :func:`monitor.api.app.create_app`, is served by the Functions host
through ``func.AsgiFunctionApp`` and locally by uvicorn (:mod:`monitor.api.serve`).
"""

from monitor.api.app import create_app

__all__ = ["create_app"]
