"""Typed configuration: bad context fails synth with a message that says what is wrong."""

import json

import pytest
from pydantic import ValidationError

from cdk_app.config import load_config
from tests.infrastructure.conftest import cdk_json_context


def with_(**overrides):
    return load_config({**cdk_json_context(), **overrides})


def test_cdk_json_defaults_are_valid():
    config = with_()
    assert config.regions == ("us-east-1", "us-west-2")
    assert config.dns_failover_enabled is False
    assert config.account is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"primary_region": "us-east"}, "not an AWS region"),
        ({"secondary_region": "us-east-1"}, "must differ"),
        ({"account": "1234"}, "12 digits"),
        ({"domain_name": "api.example.com"}, "go together"),
        ({"alarm_email": "ops"}, "not an e-mail"),
        ({"bedrock_models": ["not a model"]}, "not a Bedrock model id"),
        ({"max_prompt_chars": 0}, "greater than or equal to 1"),
        ({"api_auth": "cognito"}, "api_key"),
        ({"api_clients": ["Bad Name"]}, "lowercase"),
    ],
)
def test_invalid_context_is_rejected_with_a_clear_message(overrides, message):
    with pytest.raises((ValidationError, ValueError), match=message):
        with_(**overrides)


def test_unknown_context_key_is_rejected():
    with pytest.raises(ValueError, match="unknown context keys"):
        with_(primry_region="us-east-1")


def test_command_line_json_strings_are_decoded():
    config = with_(
        bedrock_models=json.dumps(cdk_json_context()["bedrock_models"]),
    )
    assert len(config.bedrock_models.primary) == 3


def test_strategy_naming_a_model_iam_does_not_allow_fails_synth():
    with pytest.raises(ValueError, match="not in bedrock_models"):
        with_(bedrock_models=["us.anthropic.claude-haiku-4-5-20251001-v1:0"])
