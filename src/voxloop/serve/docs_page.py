"""The ``/docs`` page: the OpenAPI document rendered as one self-contained HTML page.

No script and nothing fetched from elsewhere, so the page works on a server with no
internet access (Swagger UI would load its code from a CDN). Each route lists its
summary, authentication, parameters, request body and responses; each schema its fields
with their types and limits (the server's own, filled in by `openapi_document`).
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["docs_page"]

# keywords shown in a field's "limits" column, in this order
_LIMITS = (
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "maxProperties",
    "pattern",
    "default",
    "examples",
)
_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:64em;padding:0 1em;color:#222}
code{font:13px ui-monospace,monospace;background:#f3f3f3;padding:0 .25em}
table{border-collapse:collapse;margin:.4em 0 1em}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f7f7f7} h3{margin-bottom:.2em} .method{font-weight:bold;color:#05a}
"""


def _anchor(name: str) -> str:
    return "schema-" + name


def _type(schema: dict[str, Any]) -> str:
    """A schema's type as HTML: links for references, 'or' for unions, arrays of items."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#{_anchor(name)}">{escape(name)}</a>'
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(escape(str(k)) for k in kind)
    if kind == "array":
        return "array of " + _type(schema.get("items", {}))
    return escape(str(kind))


def _limits(schema: dict[str, Any]) -> str:
    parts = [f"{k} {schema[k]}" for k in _LIMITS if k in schema]
    if schema.get("additionalProperties") is False:
        parts.append("no other fields")
    return escape(", ".join(parts))


def _field_rows(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """One table row per property, nested objects' properties as ``parent.child``."""
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        field = prefix + name
        items = prop.get("items", {})
        rows.append(
            f"<tr><td><code>{escape(field)}</code></td><td>{_type(prop)}</td>"
            f"<td>{'yes' if name in required else ''}</td><td>{_limits(prop)}</td>"
            f"<td>{escape(prop.get('description', ''))}</td></tr>"
        )
        if "properties" in prop:
            rows += _field_rows(prop, field + ".")
        elif "properties" in items:
            rows += _field_rows(items, field + "[].")
    return rows


def _fields(schema: dict[str, Any]) -> str:
    rows = _field_rows(schema)
    if not rows:
        return ""
    head = "<tr><th>field</th><th>type</th><th>required</th><th>limits</th><th>meaning</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _operation(path: str, method: str, op: dict[str, Any], schemes: dict[str, Any]) -> str:
    out = [
        f'<h3 id="{escape(method + path)}"><span class="method">{method.upper()}</span> '
        f"<code>{escape(path)}</code></h3><p>{escape(op.get('summary', ''))}</p>"
    ]
    if op.get("description"):
        out.append(f"<p>{escape(op['description'])}</p>")
    if op.get("security"):
        ways = []
        for requirement in op["security"]:
            for name in requirement:
                scheme = schemes.get(name, {})
                if scheme.get("scheme") == "bearer":
                    ways.append("<code>Authorization: Bearer KEY</code>")
                elif scheme.get("in") == "header":
                    ways.append(f"<code>{escape(scheme['name'])}: KEY</code>")
        out.append(f"<p>The key is sent as {' or '.join(ways)}.</p>")
    if op.get("parameters"):
        params = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{_type(p.get('schema', {}))}</td><td>{'yes' if p.get('required') else ''}"
            "</td></tr>"
            for p in op["parameters"]
        )
        out.append(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th></tr>"
            f"{params}</table>"
        )
    body = op.get("requestBody", {}).get("content", {})
    if body:
        kinds = ", ".join(
            f"<code>{escape(k)}</code> {_type(v.get('schema', {}))}" for k, v in body.items()
        )
        out.append(f"<p>Body: {kinds}</p>")
    rows: list[str] = []
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        shapes = ", ".join(_type(v.get("schema", {})) for v in content.values())
        rows.append(
            f"<tr><td>{escape(status)}</td><td>{escape(response.get('description', ''))}</td>"
            f"<td>{shapes}</td></tr>"
        )
    out.append(
        "<table><tr><th>status</th><th>when</th><th>body</th></tr>" + "".join(rows) + "</table>"
    )
    return "\n".join(out)


def docs_page(document: dict[str, Any]) -> str:
    """The OpenAPI ``document`` as a self-contained HTML page."""
    info = document.get("info", {})
    components = document.get("components", {})
    schemes = components.get("securitySchemes", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    operations = [
        (path, method, op)
        for path, item in document.get("paths", {}).items()
        for method, op in item.items()
    ]
    toc = "".join(
        f'<li><a href="#{escape(m + p)}"><span class="method">{m.upper()}</span> '
        f"<code>{escape(p)}</code></a> {escape(op.get('summary', ''))}</li>"
        for p, m, op in operations
    )
    routes = "\n".join(_operation(p, m, op, schemes) for p, m, op in operations)
    schemas = "\n".join(
        f'<h3 id="{_anchor(name)}">{escape(name)}</h3>'
        f"<p>{escape(schema.get('description', ''))} {_type(schema)} {_limits(schema)}</p>"
        f"{_fields(schema)}"
        for name, schema in components.get("schemas", {}).items()
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{title}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        '<p>The same description as OpenAPI 3.1: <a href="/openapi.json">/openapi.json</a>.</p>'
        f"\n<h2>Routes</h2><ul>{toc}</ul>\n{routes}\n<h2>Schemas</h2>\n{schemas}\n"
        "</body></html>\n"
    )
