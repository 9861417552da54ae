"""The Azure Functions app: wiring only. Each blueprint holds the triggers of one concern."""

import azure.functions as func

from monitor.api.app import create_app
from monitor.functions import aggregate, evaluate, http, ingest

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (ingest.bp, evaluate.bp, aggregate.bp, http.bp):
    app.register_functions(blueprint)
