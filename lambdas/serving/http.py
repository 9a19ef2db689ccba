"""Request parsing and responses shared by the serving handlers.

The functions are invoked two ways: by the router (the request is the event itself) and through
API Gateway's proxy integration (the request is a JSON string in ``body``). Both get the same
validation and the same response shape; every input problem is a 400 that names the problem.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Request = TypeVar("Request", bound=BaseModel)


class BadRequest(ValueError):
    pass


def response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def bad_request(message: str) -> dict[str, Any]:
    return response(400, {"error": "bad_request", "message": message})


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def parse(event: Any, model: type[Request]) -> Request:
    if not isinstance(event, dict):
        raise BadRequest("the request must be a JSON object")
    payload: Any = event
    if "body" in event:
        raw = event["body"]
        if raw is None or raw == "":
            raise BadRequest("the request body is empty")
        try:
            payload = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    payload = {k: v for k, v in payload.items() if k not in ("requestContext", "headers")}
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise BadRequest(_describe(exc)) from exc


def _artifact_problem(exc: Exception) -> tuple[str, str]:
    from serving.artifacts import NoArtifact

    return ("no_artifact" if isinstance(exc, NoArtifact) else "artifact_error"), str(exc)[:500]


def unavailable(exc: Exception) -> dict[str, Any]:
    """503 for a function that cannot load the artifact it was asked to serve: none at all
    (``no_artifact``) or one that fails its checksums or download (``artifact_error``). The
    platform's fault, not the client's: the router counts it against the model and falls back."""
    error, message = _artifact_problem(exc)
    return response(503, {"error": error, "message": message})


def health(load: Any, uri: str | None) -> dict[str, Any]:
    """``{"action": "health"}``: 200 with the artifact's version when the function can serve,
    503 that says why when it cannot. ``load`` builds (or returns the cached) model for ``uri``."""
    from serving.artifacts import ArtifactError

    if uri is not None and not isinstance(uri, str):
        return bad_request("artifact_uri must be a string")
    try:
        model = load(uri) if uri else load()  # the same cache entry as an ordinary request
    except ArtifactError as exc:
        status, message = _artifact_problem(exc)
        return response(503, {"status": status, "message": message, "artifact_uri": uri})
    return response(200, {"status": "ready", "model_version": model.version, "artifact_uri": uri})
