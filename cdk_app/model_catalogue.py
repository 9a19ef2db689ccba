"""Which Bedrock model ids a region can call, and the IAM resources a call needs.

The data lives in ``bedrock_catalogue.json`` (with its sources and the date it was read), so a
configured id that a region cannot call fails synth instead of the first request after deploy.
An id is either a foundation model served in the region itself, or a cross-region inference
profile (``us.``, ``eu.``, ``apac.``, ``jp.``, ``au.``, ``us-gov.``, ``global.``) whose geography
contains the region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATALOGUE_PATH = Path(__file__).with_name("bedrock_catalogue.json")
GLOBAL = "global"


@dataclass(frozen=True)
class ModelRef:
    """A model id split into its inference-profile prefix (if any) and the foundation model."""

    model_id: str
    profile: str | None
    foundation_model: str

    @property
    def is_profile(self) -> bool:
        return self.profile is not None


@dataclass(frozen=True)
class InvokeResources:
    """ARNs that ``bedrock:InvokeModel`` must allow for one id called from one region.

    ``direct`` are foundation models called without a profile; ``profiles`` the inference
    profiles; ``routed`` the foundation models a profile may route to, which AWS evaluates with
    the ``bedrock:InferenceProfileArn`` condition key set to the profile.
    """

    direct: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    routed: tuple[str, ...] = ()


class Catalogue:
    def __init__(self, data: dict[str, Any]) -> None:
        self.retrieved: str = data["retrieved"]
        self.sources: tuple[str, ...] = tuple(data["sources"])
        self.geographies: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in data["geographies"].items()}
        self.models: dict[str, dict[str, Any]] = data["models"]

    @property
    def prefixes(self) -> frozenset[str]:
        return frozenset((*self.geographies, GLOBAL))

    def parse(self, model_id: str) -> ModelRef:
        prefix, dot, rest = model_id.partition(".")
        if dot and prefix in self.prefixes:
            return ModelRef(model_id, prefix, rest)
        return ModelRef(model_id, None, model_id)

    def problem(self, model_id: str, region: str, *, allow_global: bool) -> str | None:
        """Why ``region`` cannot call ``model_id`` (None when it can)."""
        ref = self.parse(model_id)
        entry = self.models.get(ref.foundation_model)
        if entry is None:
            return (
                f"{model_id!r} is not in the Bedrock catalogue (cdk_app/bedrock_catalogue.json, read "
                f"{self.retrieved}); add it there with its source if AWS serves it"
            )
        if entry["lifecycle"] != "ACTIVE":
            return (
                f"{model_id!r} ({entry['name']}) is {entry['lifecycle']} on Bedrock: accounts that have not used it "
                "may not be offered it; choose a current model"
            )
        if ref.profile is None:
            return self._direct_problem(ref, entry, region)
        return self._profile_problem(ref, entry, region, allow_global)

    def _direct_problem(self, ref: ModelRef, entry: dict[str, Any], region: str) -> str | None:
        if region in entry["in_region"]:
            return None
        usable = [f"{p}.{ref.foundation_model}" for p in entry["profiles"] if self._serves(p, region)]
        hint = f"; call it through an inference profile instead: {', '.join(usable)}" if usable else ""
        return f"{ref.model_id!r} is not served on demand in {region}{hint}"

    def _profile_problem(self, ref: ModelRef, entry: dict[str, Any], region: str, allow_global: bool) -> str | None:
        if ref.profile == GLOBAL and not allow_global:
            return (
                f"{ref.model_id!r} is a global inference profile, which may process requests in any commercial "
                "region; set allow_global_inference to accept that (data residency), or use a geographic profile"
            )
        if ref.profile not in entry["profiles"]:
            return f"{ref.model_id!r}: {entry['name']} has no {ref.profile!r} inference profile"
        if not self._serves(str(ref.profile), region):
            return f"{ref.model_id!r} is a {ref.profile!r} inference profile, which cannot be called from {region}"
        return None

    def _serves(self, profile: str, region: str) -> bool:
        if profile == GLOBAL:
            return not region.startswith(("us-gov-", "cn-"))
        return region in self.geographies.get(profile, ())

    def invoke_resources(self, model_id: str, *, partition: str, region: str, account: str) -> InvokeResources:
        ref = self.parse(model_id)
        if ref.profile is None:
            return InvokeResources(direct=(f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}",))
        profile_arn = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}"
        routed: tuple[str, ...]
        if ref.profile == GLOBAL:
            # Global profiles route anywhere: AWS documents the source-region model plus the
            # region-less foundation-model ARN.
            routed = (
                f"arn:{partition}:bedrock:{region}::foundation-model/{ref.foundation_model}",
                f"arn:{partition}:bedrock:::foundation-model/{ref.foundation_model}",
            )
        else:
            destinations = sorted({region, *self.geographies[ref.profile]})
            model = ref.foundation_model
            routed = tuple(f"arn:{partition}:bedrock:{r}::foundation-model/{model}" for r in destinations)
        return InvokeResources(profiles=(profile_arn,), routed=routed)


@cache
def catalogue() -> Catalogue:
    return Catalogue(json.loads(CATALOGUE_PATH.read_text()))
