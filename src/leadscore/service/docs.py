"""``/docs``: the API reference rendered on the server from the OpenAPI document.

One self-contained HTML page: inline CSS, no scripts, nothing fetched, so it reads the same on a
network without internet access. The machine-readable document stays at ``/openapi.json``.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, select_autoescape

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} API {{ version }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 980px; padding: 0 1rem; color: #1f2328; }
h1 { margin-bottom: 0; } .sub { color: #59636e; margin-top: .2rem; }
section { border: 1px solid #d1d9e0; border-radius: 6px; margin: 1rem 0; padding: .6rem 1rem; }
.m { font-weight: 700; font-family: ui-monospace, monospace; padding: 1px 6px; border-radius: 4px; color: #fff; }
.get { background: #1f6feb; } .post { background: #1a7f37; } code, pre { font-family: ui-monospace, monospace; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; } td, th { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; vertical-align: top; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; font-size: 12px; } .open { color: #1a7f37; } .key { color: #9a6700; }
</style></head><body>
<h1>{{ title }} <small>{{ version }}</small></h1>
<p class="sub">{{ summary }}</p>
<p>Send an API key as <code>X-API-Key: ...</code> or <code>Authorization: Bearer ...</code>.
The OpenAPI document is at <code>/openapi.json</code>.</p>
{% for op in operations %}
<section>
<h2><span class="m {{ op.method }}">{{ op.method | upper }}</span> <code>{{ op.path }}</code></h2>
<p>{{ op.summary }}{% if op.description %} {{ op.description }}{% endif %}
{% if op.open %}<span class="open">(no key needed)</span>{% else %}<span class="key">(API key)</span>{% endif %}</p>
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p["in"] }}</td><td>{{ p.type }}</td><td>{{ p.description }}</td></tr>{% endfor %}</table>{% endif %}
{% if op.body %}<p>Request body:</p><pre>{{ op.body }}</pre>{% endif %}
<p>Responses: {% for code, text in op.responses %}<code>{{ code }}</code> {{ text }}{% if not loop.last %}; {% endif %}{% endfor %}</p>
</section>
{% endfor %}
<section><h2>The fields of a lead (<code>LeadIn</code>)</h2>
<table><tr><th>field</th><th>type</th><th>about</th></tr>
{% for name, f in lead_fields %}<tr><td><code>{{ name }}</code></td><td>{{ f.type }}</td><td>{{ f.about }}</td></tr>{% endfor %}
</table></section>
</body></html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_docs(schema: dict[str, Any]) -> str:
    """The reference page for an OpenAPI document."""
    info = schema.get("info", {})
    global_security = schema.get("security", [])
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            operations.append(
                {
                    "method": method,
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "open": op.get("security", global_security) == [],
                    "parameters": [
                        {**p, "type": _type(p.get("schema", {})), "description": p.get("description", "")}
                        for p in op.get("parameters", [])
                    ],
                    "body": _body(op),
                    "responses": [
                        (code, r.get("description", "")) for code, r in op.get("responses", {}).items()
                    ],
                }
            )
    lead = schema.get("components", {}).get("schemas", {}).get("LeadIn", {})
    lead_fields = [
        (name, {"type": _type(f), "about": f.get("description", "")})
        for name, f in lead.get("properties", {}).items()
    ]
    return _ENV.from_string(PAGE).render(
        title=info.get("title", "API"),
        version=info.get("version", ""),
        summary=info.get("summary", ""),
        operations=operations,
        lead_fields=lead_fields,
    )


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type", "any")
    if "enum" in schema:
        return f"{kind} ({', '.join(map(str, schema['enum']))})"
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def _body(op: dict[str, Any]) -> str:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    return json.dumps(content["schema"], indent=1) if "schema" in content else ""
