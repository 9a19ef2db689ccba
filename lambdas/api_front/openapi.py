"""Print the API's OpenAPI document, generated from the front Lambda's routes and models.

``make openapi`` writes it to docs/openapi.json; a test keeps that file current.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from api_front.handler import ERROR_RESPONSES, app
from api_stream.models import EVENTS, event_schemas

# API Gateway checks the key before the request reaches the function (the function never sees it).
SECURITY_SCHEMES: dict[str, Any] = {
    "apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header, description="Per-client API key")
}


def document() -> str:
    spec = json.loads(
        app.get_openapi_json_schema(title="FinAI platform API", version="1.0.0", security_schemes=SECURITY_SCHEMES)
    )
    # Powertools documents its default 422 for validation errors; this API answers them with 400.
    for operations in spec["paths"].values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    spec["paths"]["/v1/generate/stream"] = stream_operation(spec["paths"]["/v1/generate"]["post"])
    for name, schema in event_schemas().items():
        for nested, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(nested, definition)
        schemas[name] = json.loads(json.dumps(schema).replace("#/$defs/", "#/components/schemas/"))
    return json.dumps(spec, indent=2, sort_keys=False) + "\n"


STREAM_DESCRIPTION = (
    "The request of POST /v1/generate, answered as server-sent events (text/event-stream): `meta` once "
    "(tier, model, variant, request id) when a tier has produced its first text, then `delta` events with "
    "text, then exactly one terminal event: `done` (token counts, the sentiment field, usage) or `error` "
    "(code, failure class, the failing tier, partial: true). A primary that fails or sends nothing within "
    "the first-token timeout before any text is sent is counted against its circuit and the fallback "
    "streams instead (then the static answer); after the first text, a failure ends the stream with "
    "`error`, never with another model's text appended. A stream that ends without a terminal event was "
    "cut in transit. Bad input, an exhausted budget and missing keys get the JSON errors of the sync route "
    "before any event."
)


def stream_operation(generate: dict[str, Any]) -> dict[str, Any]:
    """The stream route: the sync route's request and errors, and the event stream."""
    events = {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in event_schemas()]}
    responses: dict[str, Any] = {
        "200": {
            "description": "Server-sent events; each event's data is the JSON of its type (x-events).",
            # OpenAPI 3.1 (before 3.2's itemSchema): for an event stream, `schema` describes one
            # event; its data is the JSON of the event's type (contentSchema, and x-events).
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"enum": list(EVENTS)},
                            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": events},
                        },
                    },
                    "x-events": events,
                }
            },
        }
    }
    for status, response in ERROR_RESPONSES.items():
        responses[str(status)] = generate["responses"].get(str(status), response)
    return {
        "post": {
            "tags": ["generate"],
            "summary": "Answer a financial task, streamed",
            "description": STREAM_DESCRIPTION,
            "operationId": "post_generate_stream_v1_generate_stream_post",
            "requestBody": generate["requestBody"],
            "responses": responses,
            "security": generate.get("security", [{"apiKey": []}]),
        }
    }


if __name__ == "__main__":
    print(document(), end="")
