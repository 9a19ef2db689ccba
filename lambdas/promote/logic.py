"""Point the strategy's serving-Lambda variants at a newly trained adapter."""

from __future__ import annotations

import copy
from typing import Any

from shared.strategy import parse_strategy


def repoint(
    document: dict[str, Any], *, target: str, model_id: str, artifact_uri: str
) -> tuple[dict[str, Any], list[str]]:
    """A new strategy document whose ``lambda`` variants for ``target`` serve the new adapter.

    Returns the document and the ``use_case:variant`` names it changed; the result is validated
    against the strategy schema, so a promotion can never publish an invalid document.
    """
    updated = copy.deepcopy(document)
    changed = []
    for use_case, entry in updated["use_cases"].items():
        for variant in entry["variants"]:
            if variant["provider"] == "lambda" and variant.get("target") == target:
                variant["model_id"] = model_id
                variant["artifact_uri"] = artifact_uri
                changed.append(f"{use_case}:{variant['name']}")
    if changed:
        updated["version"] = model_id[:64]
        parse_strategy(updated)
    return updated, changed
