"""Every gateway response is valid JSON in the API's error shape, whatever API Gateway substitutes.

Gateway response templates are not VTL: API Gateway pastes ``$context`` values in as they are,
with no escaping. Defect 6 was a validator message (which echoes the client's body, quotes and
all) pasted inside a JSON string. Here every variable in every template is replaced by hostile
text, except the ones listed as AWS-generated fixed-format values.
"""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from api_front.models import ErrorResponse
from stacks.api_front import SAFE_TEMPLATE_VARIABLES, gateway_response_body

REGIONS = ("us-east-1", "us-west-2")
HOSTILE = ['"', "\\", "\n", '"}, "error": "x', "naïve \u2028 \U0001f600", "</script>", "${x}", "\\u0000", "'"]
VARIABLE = re.compile(r"\$(?:context|stageVariables|input|util)\.[A-Za-z0-9_.]+|\$[A-Za-z]+")
REQUEST_ID = "c0ffee00-1111-2222-3333-444455556666"


def templates(synthesized, region):
    for response in synthesized.regional(region).find_resources("AWS::ApiGateway::GatewayResponse").values():
        props = response["Properties"]
        yield props["ResponseType"], props.get("StatusCode"), props["ResponseTemplates"]["application/json"]


def fill(template: str, hostile: str) -> str:
    def value(match: re.Match[str]) -> str:
        return REQUEST_ID if match.group(0) in SAFE_TEMPLATE_VARIABLES else hostile

    return VARIABLE.sub(value, template)


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("hostile", HOSTILE)
def test_every_gateway_response_renders_valid_json_in_the_error_shape(synthesized, region, hostile):
    found = list(templates(synthesized, region))
    kinds = {kind for kind, _, _ in found}
    assert {"BAD_REQUEST_BODY", "INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "DEFAULT_4XX", "DEFAULT_5XX"} <= kinds
    for kind, status, template in found:
        body = json.loads(fill(template, hostile))
        error = ErrorResponse.model_validate(body)
        assert error.request_id == REQUEST_ID, kind
        assert error.message and error.error, kind
        assert status is None or 400 <= int(status) < 600


def test_the_check_catches_a_client_value_pasted_into_a_string():
    """Canary: the shape that shipped before (validator message inside quotes) fails it."""
    shipped = '{"error": "invalid_request", "message": "$context.error.validationErrorString", "request_id": "x"}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(fill(shipped, '"'))
    with pytest.raises((json.JSONDecodeError, ValidationError)):
        ErrorResponse.model_validate(json.loads(fill(shipped, '"}, "error": 1, "x": "')))


def test_gateway_text_that_would_need_escaping_is_refused_at_synth():
    with pytest.raises(ValueError, match="escaping"):
        gateway_response_body("invalid_request", 'the "prompt" is missing')
