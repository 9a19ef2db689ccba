"""Point the strategy's serving-Lambda and endpoint variants at a newly trained adapter."""

from __future__ import annotations

import copy
from typing import Any

from shared.strategy import parse_strategy


def repoint(
    document: dict[str, Any],
    *,
    target: str,
    model_id: str,
    artifact_uri: str,
    inference_component: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A new strategy document whose variants for ``target`` serve the new adapter: the
    ``lambda`` variants, or with ``inference_component`` the ``sagemaker`` variants (which then
    invoke that component).

    Returns the document and the ``use_case:variant`` names it changed; the result is validated
    against the strategy schema, so a promotion can never publish an invalid document.
    """
    provider = "lambda" if inference_component is None else "sagemaker"
    updated = copy.deepcopy(document)
    changed = []
    for use_case, entry in updated["use_cases"].items():
        for variant in entry["variants"]:
            if variant["provider"] == provider and variant.get("target") == target:
                variant["model_id"] = model_id
                variant["artifact_uri"] = artifact_uri
                if inference_component is not None:
                    variant["inference_component"] = inference_component
                changed.append(f"{use_case}:{variant['name']}")
    if changed:
        updated["version"] = model_id[:64]
        parse_strategy(updated)
    return updated, changed
