"""The ASGI application of the monitor: `create_app()` wires routes, error handlers and the key check.

No setting is read here: the key and the storage connection are read per request, so building the
app (at import of function_app.py) cannot fail on a missing or malformed setting.
"""

from __future__ import annotations

from fastapi import FastAPI

from monitor.api.errors import install_error_handlers
from monitor.api.middleware import ApiKeyMiddleware, BodyLimitMiddleware, CatchAllMiddleware
from monitor.api.quality import quality_router
from monitor.api.routes import root_router, router

TITLE = "Generative-AI quality monitor"
VERSION = "0.1.0"
DESCRIPTION = (
    "Monitor configurations, quality results (windows, alerts, scored records), status and the "
    "dashboard. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`. Every route but "
    "`/api/health` needs a function key (exactly one `x-functions-key` header or `code` query "
    "parameter) in Azure, and locally when MONITOR_API_KEY is set. Bodies are read up to "
    "MAX_REQUEST_BYTES (413 beyond) and JSON nested at most 64 levels (400 beyond)."
)


def create_app() -> FastAPI:
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # /api/docs is served by routes.get_docs: no CDN, works offline
        redoc_url=None,
        separate_input_output_schemas=False,
    )
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(quality_router)
    app.include_router(root_router)
    # Added last = outermost: the catch-all sees everything, the key check runs before the body is
    # read (an unauthenticated caller cannot make the app read anything), the body limit before routing.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(ApiKeyMiddleware)
    app.add_middleware(CatchAllMiddleware)
    return app
