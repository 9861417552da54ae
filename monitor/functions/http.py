"""HTTP functions beside the ASGI app: `health` stays anonymous even where the host enforces keys.

function_app.py builds the ASGI function with
``func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.FUNCTION)`` (one catch-all
route `/{*route}` with authLevel FUNCTION) and registers this blueprint. The host's router prefers
the literal route `health` over the catch-all, so `GET /api/health` answers without a key, and
every other route needs a function key.
"""

from __future__ import annotations

import json

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("health")
@bp.route(route="health", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: 200 `{"status": "ok"}`, no key, no storage call."""
    return func.HttpResponse(json.dumps({"status": "ok"}), status_code=200, mimetype="application/json")
