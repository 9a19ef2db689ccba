"""Financial sentiment container Lambda: ``{"texts": [...]}`` -> label, probabilities, confidence."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, field_validator

from serving.artifacts import ARTIFACT_URI, PROMOTED_KEEP, ArtifactError, resolve
from serving.classifier import Classifier
from serving.http import BadRequest, bad_request, health, parse, response, unavailable
from serving.runtime import InputTooLong

logger = Logger(service="sentiment")
MAX_TEXTS = 32  # one batch: the size the benchmark measures throughput at
MAX_TEXT_CHARS = 2000


class SentimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS)
    truncate: bool = False
    # The strategy variant's artifact (what promotion wrote); absent: the function's default.
    artifact_uri: str | None = Field(default=None, max_length=1024, pattern=ARTIFACT_URI.pattern)

    @field_validator("texts")
    @classmethod
    def non_empty(cls, texts: list[str]) -> list[str]:
        for index, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"text {index} is empty")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"text {index} is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
        return texts


@lru_cache(maxsize=PROMOTED_KEEP)
def classifier(artifact_uri: str | None = None) -> Classifier:
    return Classifier(resolve(artifact_uri))


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("action") == "health":
        return health(classifier, event.get("artifact_uri"))
    try:
        request = parse(event, SentimentRequest)
        model = classifier(request.artifact_uri) if request.artifact_uri else classifier()
        predictions = model.predict(request.texts, truncate=request.truncate)
    except InputTooLong as exc:
        return bad_request(str(exc))
    except BadRequest as exc:
        return bad_request(str(exc))
    except ArtifactError as exc:
        return unavailable(exc)
    logger.info("texts classified", extra={"texts": len(predictions), "model": model.version})
    return response(
        200,
        {
            "results": [
                {
                    "label": p.label,
                    "probabilities": p.probabilities,
                    "confidence": p.confidence,
                    "truncated": p.truncated,
                }
                for p in predictions
            ],
            "model_version": model.version,
        },
    )
