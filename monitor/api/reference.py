"""`GET /api/docs`: a readable API reference rendered on the server from the OpenAPI document.

No script and nothing fetched from elsewhere, so it works offline and behind strict networks; the
machine-readable document stays at `/api/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from monitor.dashboard.html import cells, document, e, headers

METHODS = ("get", "put", "post", "delete", "patch")


def _schema_text(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    options = schema.get("anyOf")
    if options:
        return " or ".join(_schema_text(o) for o in options)
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if schema.get("format") else kind


def _parameters(operation: Mapping[str, Any]) -> str:
    params = operation.get("parameters") or []
    if not params:
        return ""
    rows = "".join("<tr>" + cells([
        ("name", "", f"<code>{e(p.get('name'))}</code>"), ("in", "", e(p.get("in"))),
        ("type", "", e(_schema_text(p.get("schema") or {}))), ("required", "", "yes" if p.get("required") else "no"),
        ("description", "text", e(p.get("description") or (p.get("schema") or {}).get("description"))),
    ]) + "</tr>" for p in params)
    columns = ("parameter", "in", "type", "required", "description")
    return (f'<div class="scroll"><table class="stack"><thead><tr>{headers(columns)}'
            f"</tr></thead><tbody>{rows}</tbody></table></div>")


def _responses(operation: Mapping[str, Any]) -> str:
    items = "".join(f"<li><strong>{e(code)}</strong> {e(body.get('description'))}</li>"
                    for code, body in (operation.get("responses") or {}).items())
    return f"<p class=\"legend\">Responses:</p><ul>{items}</ul>" if items else ""


def _operation(path: str, method: str, operation: Mapping[str, Any]) -> str:
    summary = operation.get("summary") or ""
    description = operation.get("description") or ""
    body = "<p>Body: JSON (see the schema in /api/openapi.json).</p>" if operation.get("requestBody") else ""
    return (f'<article class="metric" data-testid="api-operation"><h3><code>{e(method.upper())} {e(path)}</code></h3>'
            f"<p>{e(summary)}</p>" + (f"<p class=\"legend\">{e(description)}</p>" if description else "")
            + f"{_parameters(operation)}{body}{_responses(operation)}</article>")


def reference_html(spec: Mapping[str, Any], *, link_params: Mapping[str, str] | None = None) -> str:
    info = spec.get("info") or {}
    query = urlencode(dict(link_params or {}))
    suffix = f"?{query}" if query else ""
    operations = "".join(_operation(path, method, op)
                         for path, item in (spec.get("paths") or {}).items()
                         for method, op in item.items() if method in METHODS)
    body = (f"<header><h1>{e(info.get('title'))} API {e(info.get('version'))}</h1>"
            f"<p class=\"meta\">{e(info.get('description'))}</p>"
            f'<p class="meta">Machine-readable: <a href="/api/openapi.json{e(suffix)}">/api/openapi.json</a> · '
            f'<a href="/api/dashboard{e(suffix)}">dashboards</a></p></header><main>{operations}</main>')
    return document(f"{info.get('title', 'API')}: reference", body)
