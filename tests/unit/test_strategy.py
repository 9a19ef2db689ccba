"""One schema for the strategy: the AppConfig validator, the router and these tests all use it."""

import copy
import json

import jsonschema
import pytest

from cdk_app.config import use_case_names
from shared.strategy import DOCUMENT_PATH, SCHEMA_PATH, StrategyError, parse_strategy
from shared.use_cases import UseCase

DOCUMENT = json.loads(DOCUMENT_PATH.read_text())
SCHEMA = json.loads(SCHEMA_PATH.read_text())


def test_shipped_strategy_is_valid_under_draft4_like_appconfig():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(DOCUMENT)
    assert parse_strategy(DOCUMENT).version == DOCUMENT["version"]


def test_schema_use_cases_are_the_api_use_cases():
    assert list(use_case_names()) == [u.value for u in UseCase]


def mutated(path, value):
    document = copy.deepcopy(DOCUMENT)
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("use_cases", "compliance"), KeyError),
        (("use_cases", "crypto"), {"system_prompt": "x", "variants": []}),
        (("breaker", "failure_threshold"), 0),
        (("breaker", "cooldown_seconds"), "30"),
        (("use_cases", "general", "variants"), []),
        (("use_cases", "general", "variants", 0, "provider"), "openai"),
        (("use_cases", "general", "variants", 0, "weight"), -1),
        (("use_cases", "general", "variants", 0, "temperature"), 1.5),
        (("use_cases", "general", "variants", 0, "provider"), "lambda"),  # a lambda variant needs a target
    ],
)
def test_invalid_strategies_fail_both_validators(path, value):
    document = mutated(path, value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(document)
    with pytest.raises(StrategyError):
        parse_strategy(document)


def test_all_zero_weights_are_rejected_by_the_router():
    document = mutated(("use_cases", "general", "variants", 0, "weight"), 0)
    with pytest.raises(StrategyError, match="positive weight"):
        parse_strategy(document)


def test_lambda_variant_with_a_target_is_accepted():
    variant = {
        "name": "L",
        "provider": "lambda",
        "target": "advisor",
        "model_id": "advisor-flan-t5-lora",
        "weight": 100,
    }
    document = mutated(("use_cases", "budgeting_advice", "variants"), [variant])
    assert parse_strategy(document).use_cases[UseCase.BUDGETING_ADVICE].variants[0].target == "advisor"


def test_non_json_is_a_strategy_error():
    with pytest.raises(StrategyError, match="not JSON"):
        parse_strategy("{")
