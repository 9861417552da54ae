"""Azure Functions blueprints, one per concern. Each trigger body turns its input into one call
of a monitor service and returns; no settings are read at import time."""
