"""Print the API's OpenAPI document, generated from the front Lambda's routes and models.

``make openapi`` writes it to docs/openapi.json; a test keeps that file current.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from api_front.handler import app

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
    return json.dumps(spec, indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(document(), end="")
