"""Typed, validated configuration for the whole platform.

Every value comes from CDK context (defaults in ``cdk.json``, overrides with ``-c key=value``)
and is validated here at synth time, so a typo fails ``cdk synth`` instead of a deployment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
STRATEGY_DOCUMENT = REPO_ROOT / "lambdas" / "shared" / "strategy" / "model_selection.json"
STRATEGY_SCHEMA = REPO_ROOT / "lambdas" / "shared" / "strategy" / "model_selection.schema.json"

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
# Bedrock model ids look like ``provider.model-name-version[:n]``; inference profiles add a
# prefix (``us.``, ``eu.``, ``apac.``, ``us-gov.``, ``global.``).
_MODEL_ID = re.compile(r"^([a-z]{2,6}(-[a-z]+)?\.)?[a-z0-9-]+\.[a-zA-Z0-9.\-:]+$")

CONTEXT_KEYS = (
    "primary_region",
    "secondary_region",
    "account",
    "domain_name",
    "hosted_zone_id",
    "hosted_zone_name",
    "alarm_email",
    "bedrock_models",
    "fallback_model",
    "max_prompt_chars",
    "powertools_layer_version",
    "training",
    "api_auth",
    "api_clients",
    "serving",
    "monitoring",
    "benchmark",
    "model_prices",
    "regional_model_ids",
    "allow_global_inference",
    "usage_plan",
    "appconfig_agent_layers",
    "budgets",
    "ledger",
    "streaming",
)

# USD per 1,000 input and output tokens (on-demand, geographic inference profiles, from the Bedrock
# pricing page as read on 2026-12-02). Dashboards estimate cost from token metrics with these, and
# the benchmark weighs cost with them; override with the model_prices context key when prices or
# models change.
DEFAULT_MODEL_PRICES: dict[str, tuple[float, float]] = {
    "us.anthropic.claude-haiku-4-5-20251001-v1:0": (0.0011, 0.0055),
    "us.anthropic.claude-sonnet-4-6": (0.0033, 0.0165),
    "us.amazon.nova-2-lite-v1:0": (0.00033, 0.00275),
    "us.amazon.nova-micro-v1:0": (0.000035, 0.00014),
}


class BedrockModels(BaseModel):
    """The Bedrock models the platform may call; IAM is scoped to exactly these ARNs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary: tuple[str, ...] = Field(min_length=1)
    fallback: str

    @field_validator("primary")
    @classmethod
    def _check_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for model_id in value:
            _check_model_id(model_id)
        if len(set(value)) != len(value):
            raise ValueError("bedrock_models lists a model twice")
        return value

    @field_validator("fallback")
    @classmethod
    def _check_fallback(cls, value: str) -> str:
        return _check_model_id(value)

    @property
    def all_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.primary, self.fallback)))


def _check_model_id(model_id: str) -> str:
    if not _MODEL_ID.match(model_id):
        raise ValueError(f"{model_id!r} is not a Bedrock model id (e.g. us.anthropic.claude-haiku-4-5-20251001-v1:0)")
    return model_id


# An ECR image URI: account, region ({region} is filled per stack), repository, tag.
ECR_IMAGE_URI = r"^(\d{12})\.dkr\.ecr\.(\{region\}|[a-z0-9-]+)\.amazonaws\.com/([a-z0-9._/-]+):[A-Za-z0-9._-]+$"


def ecr_repository(uri: str | None) -> tuple[str, str, str] | None:
    """(account, region, repository) of an ECR image URI, for its pull grant; None for no URI."""
    match = re.match(ECR_IMAGE_URI, uri) if uri else None
    return (match.group(1), match.group(2), match.group(3)) if match else None


class TrainingSettings(BaseModel):
    """The SageMaker training pipeline (primary region only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_type: str = Field(default="ml.g5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    # Empty (the default): the image is built from training_jobs/image with the project's own pins,
    # so the versions the tests use are the versions that train. A URI ({region} is filled per
    # stack) uses that image instead; it must carry those packages (see the README).
    image: str = Field(default="", pattern=f"^$|{ECR_IMAGE_URI}")
    # Which torch wheels the built image carries; by default from the instance family
    # (ml.g*/ml.p*: gpu, anything else: cpu).
    image_variant: Literal["gpu", "cpu"] | None = None
    sentiment_gate_macro_f1: float = Field(default=0.70, gt=0, le=1)
    advisor_gate_grounded: float = Field(default=0.95, gt=0, le=1)
    schedule: str = Field(default="rate(7 days)", pattern=r"^(rate|cron)\(.+\)$")
    schedule_enabled: bool = False
    # Lifecycle cleanup of SageMaker resources and training artifacts (a dry run unless cleanup_delete).
    cleanup_max_age_days: int = Field(default=30, ge=1, le=3650)
    cleanup_delete: bool = False
    cleanup_schedule: str = Field(default="rate(1 day)", pattern=r"^(rate|cron)\(.+\)$")

    def image_uri(self, region: str) -> str | None:
        """The configured image for ``region``, or None when the platform builds its own."""
        return self.image.replace("{region}", region) if self.image else None

    def image_repository(self, region: str) -> tuple[str, str, str] | None:
        """(account, region, repository) of the configured image, for its pull grant; None when
        the platform builds its own."""
        return ecr_repository(self.image_uri(region))

    def variant(self) -> str:
        if self.image_variant is not None:
            return self.image_variant
        family = self.instance_type.split(".")[1]
        return "gpu" if family.startswith(("g", "p")) else "cpu"


class ServingArtifact(BaseModel):
    """Where one container Lambda's ONNX artifact comes from: baked into the image (both unset),
    or an S3 prefix pinned by the SHA-256 of its manifest (both set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    artifact_s3_uri: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/=-]*)?$"
    )
    manifest_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _pinned(self) -> ServingArtifact:
        if (self.artifact_s3_uri is None) != (self.manifest_sha256 is None):
            raise ValueError("artifact_s3_uri and manifest_sha256 go together: an S3 artifact must be pinned")
        return self

    @property
    def bucket(self) -> str | None:
        return self.artifact_s3_uri.removeprefix("s3://").split("/", 1)[0] if self.artifact_s3_uri else None

    @property
    def prefix(self) -> str:
        if not self.artifact_s3_uri:
            return ""
        parts = self.artifact_s3_uri.removeprefix("s3://").split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""


# Instance families whose storage is local NVMe: SageMaker refuses an endpoint config's KmsKeyId on
# them (their instance store is encrypted by the hardware), so the construct omits it there.
LOCAL_STORAGE_FAMILIES = frozenset(
    {"c5d", "c6id", "g4dn", "g5", "g6", "g6e", "m5d", "m6id", "p3dn", "p4d", "p4de", "p5", "p5e", "r5d", "trn1"}
)
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9._/=-]+$"


class EndpointSettings(BaseModel):
    """The SageMaker real-time endpoint tier (issue 15): a causal instruct model too large for a
    Lambda (the seeds' Phi-3.5-mini class), served by a Large Model Inference container, with each
    LoRA adapter as an inference component on the shared base. Off by default: it bills per
    instance-hour."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    # The strategy target its variants name, and the adapter family the training pipeline promotes.
    target: str = Field(default="advisor_large", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    # The LMI (DJL Serving) container; {region} is filled per stack.
    image: str = Field(default="", pattern=f"^$|{ECR_IMAGE_URI}")
    # The base model's uncompressed weights per region: SageMaker reads model data only from a
    # bucket in the endpoint's own region.
    base_model_uris: dict[str, str] = Field(default_factory=dict)
    base_model_name: str = Field(default="microsoft/Phi-3.5-mini-instruct", min_length=1, max_length=128)
    instance_type: str = Field(default="ml.g5.2xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    min_instances: int = Field(default=1, ge=1, le=10)
    max_instances: int = Field(default=2, ge=1, le=10)
    accelerators: int = Field(default=1, ge=0, le=8)
    min_memory_mb: int = Field(default=16_384, ge=1024)
    # The strategy variant's share of budgeting advice (0: promoted and probed, but sent no traffic).
    weight: int = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> EndpointSettings:
        if self.max_instances < self.min_instances:
            raise ValueError("serving.endpoint.max_instances must be at least min_instances")
        for region, uri in self.base_model_uris.items():
            if not re.match(S3_URI, uri):
                raise ValueError(f"serving.endpoint.base_model_uris[{region!r}] is not an s3:// prefix: {uri!r}")
        if self.enabled and not self.image:
            raise ValueError("serving.endpoint.enabled needs image: an LMI container URI in ECR")
        return self

    @property
    def local_storage(self) -> bool:
        """True when the instance type's storage is local NVMe (no KmsKeyId allowed)."""
        return self.instance_type.split(".")[1] in LOCAL_STORAGE_FAMILIES

    def image_uri(self, region: str) -> str:
        return self.image.replace("{region}", region)

    def image_repository(self, region: str) -> tuple[str, str, str] | None:
        """(account, region, repository) of the LMI image, for its pull grant."""
        return ecr_repository(self.image_uri(region))

    def variant(self) -> dict[str, Any]:
        """The budgeting-advice variant this tier adds to the strategy; promotion fills in the
        adapter's inference component."""
        return {
            "name": "endpoint",
            "provider": "sagemaker",
            "target": self.target,
            "model_id": f"{self.target.replace('_', '-')}-lora",
            "answer_format": "plan",
            "weight": self.weight,
            "max_tokens": 600,
            "temperature": 0.4,
        }


class ServingSettings(BaseModel):
    """The container Lambdas that serve the fine-tuned adapters (issue 4)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # 3008 MB buys two vCPUs, the thread count the artifacts are benchmarked with.
    memory_mb: int = Field(default=3008, ge=1024, le=10_240)
    advisor: ServingArtifact = ServingArtifact()
    sentiment: ServingArtifact = ServingArtifact()
    endpoint: EndpointSettings = EndpointSettings()


class BenchmarkSettings(BaseModel):
    """The scheduled foundation-model benchmark (off unless schedule_enabled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: str = Field(default="rate(7 days)", pattern=r"^(rate|cron)\(.+\)$")
    schedule_enabled: bool = False
    publish: bool = False  # create a new AppConfig version with the winners (deploying stays manual)


class MonitoringSettings(BaseModel):
    """Alarm thresholds (per region). Every alarm notifies the alarm topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alarms_enabled: bool = True
    latency_p99_ms: int = Field(default=8000, ge=100, le=29_000)  # API Gateway's hard limit is 29 s
    error_rate_5xx: float = Field(default=0.05, gt=0, le=1)
    degraded_rate: float = Field(default=0.20, gt=0, le=1)
    lambda_throttles: int = Field(default=1, ge=1)
    # Task failures (an answer with no readable label) per model and period: not counted in the
    # circuit, since a prompt can cause one, so this alarm is where a model failing a task shows.
    task_failures: int = Field(default=20, ge=1)
    period_seconds: Literal[60, 300] = 60


class UsagePlanSettings(BaseModel):
    """Per-client API Gateway usage plan; the WAF rate rules are sized from it so WAF never blocks first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: int = Field(default=20, ge=1, le=10_000)  # requests per second, steady
    burst_limit: int = Field(default=40, ge=1, le=5_000)
    monthly_quota: int = Field(default=100_000, ge=1)


class LedgerSettings(BaseModel):
    """The audit ledger's archive: an S3 bucket with Object Lock (SEC 17a-4-style record keeping)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Six years: SEC rule 17a-4's longest period for broker-dealer records. In COMPLIANCE mode no
    # one, not even the account's root user, can delete an archived record before it ends.
    retention_days: int = Field(default=2192, ge=1, le=36_500)
    retention_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"


# The AWS Lambda Web Adapter's published layer (x86_64), version 0.9.x: the stream function's
# response-stream bridge. Its account and name are AWS's; the version is pinned.
WEB_ADAPTER_LAYER = "arn:{partition}:lambda:{region}:753240598075:layer:LambdaAdapterLayerX86:{version}"


class StreamingSettings(BaseModel):
    """POST /v1/generate/stream: silence limits, the overall bound, and the Web Adapter layer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A tier that sends no text for this long before its first token counts as failed; the next streams.
    first_token_timeout_s: float = Field(default=5.0, gt=0, le=30)
    # After the first token: this long without text ends the stream with error "stalled".
    idle_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # The whole stream, every tier included: past this it ends with error "deadline" (or, before
    # any text, the static answer). The function's timeout is derived from it.
    max_stream_s: int = Field(default=60, ge=10, le=600)
    web_adapter_layer_version: int = Field(default=25, ge=1)
    # A region's layer ARN where it differs from the published pattern (an account's own copy).
    web_adapter_layers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> StreamingSettings:
        if 2 * self.first_token_timeout_s >= self.max_stream_s:
            raise ValueError("max_stream_s must leave room for both models' first-token timeouts")
        for region, arn in self.web_adapter_layers.items():
            match = _LAYER_ARN.match(arn)
            if not match or match.group(1) != region:
                raise ValueError(f"streaming.web_adapter_layers[{region!r}] must be a layer ARN in {region}: {arn!r}")
        return self

    def web_adapter_layer(self, region: str, partition: str = "aws") -> str:
        return self.web_adapter_layers.get(region) or WEB_ADAPTER_LAYER.format(
            partition=partition, region=region, version=self.web_adapter_layer_version
        )


@dataclass(frozen=True)
class RegionModels:
    """The Bedrock ids one region calls: the strategy's ids, translated where the region needs another."""

    region: str
    translation: dict[str, str]
    primary: tuple[str, ...]
    fallback: str

    @property
    def all_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.primary, self.fallback)))

    def translate(self, model_id: str) -> str:
        return self.translation.get(model_id, model_id)


_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):\d{12}:layer:[A-Za-z0-9_-]+:\d+$")


class PlatformConfig(BaseModel):
    """Everything that varies between deployments of the platform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_region: str
    secondary_region: str
    account: str | None = None
    domain_name: str | None = None
    hosted_zone_id: str | None = None
    hosted_zone_name: str | None = None  # default: the parent of domain_name (api.example.com -> example.com)
    alarm_email: str | None = None
    bedrock_models: BedrockModels
    # The API rejects longer prompts with 413 before starting the state machine, whose
    # StartSyncExecution input is capped at 256 KB.
    max_prompt_chars: int = Field(default=16_000, ge=1, le=60_000)
    powertools_layer_version: int = Field(default=27, ge=1)
    training: TrainingSettings = TrainingSettings()
    # api_key: per-client keys with usage plans (throttle + quota); iam: SigV4-signed calls.
    api_auth: Literal["api_key", "iam"] = "api_key"
    api_clients: tuple[str, ...] = Field(default=("default",), min_length=1)
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    benchmark: BenchmarkSettings = BenchmarkSettings()
    model_prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_MODEL_PRICES))
    # How a region calls a model the strategy names, where it differs from the strategy's id
    # ({"eu-west-1": {"us.x": "eu.x"}}): the strategy stays one document, each region's AppConfig
    # copy, IAM grants, fallback and dashboards use the region's ids.
    regional_model_ids: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Global inference profiles may process a request in any commercial region; banks with data
    # residency rules must opt in explicitly.
    allow_global_inference: bool = False
    usage_plan: UsagePlanSettings = UsagePlanSettings()
    # The AppConfig agent Lambda extension, per region (its ARN is published per region and
    # account by AWS). Where set, the router reads its strategy through the agent on localhost.
    appconfig_agent_layers: dict[str, str] = Field(default_factory=dict)
    # The strategy document's "budgets" section (currency, alert_share, default and per-client
    # limits), replacing the shipped one; its prices always come from model_prices. Validated by
    # the strategy's JSON Schema, and changeable later in AppConfig without a deploy.
    budgets: dict[str, Any] | None = None
    ledger: LedgerSettings = LedgerSettings()
    streaming: StreamingSettings = StreamingSettings()

    @field_validator("api_clients")
    @classmethod
    def _check_clients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.match(r"^[a-z][a-z0-9-]{0,31}$", name):
                raise ValueError(f"api client name {name!r} must be lowercase letters, digits and hyphens")
        if len(set(value)) != len(value):
            raise ValueError("api_clients lists a client twice")
        return value

    @field_validator("primary_region", "secondary_region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-1)")
        return value

    @field_validator("account")
    @classmethod
    def _check_account(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT.match(value):
            raise ValueError(f"account {value!r} must be 12 digits")
        return value

    @field_validator("alarm_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"alarm_email {value!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _check_regional_models(self) -> PlatformConfig:
        from cdk_app.model_catalogue import catalogue

        for region, mapping in self.regional_model_ids.items():
            if region not in self.regions:
                raise ValueError(f"regional_model_ids names {region!r}, which is not a configured region")
            for source, target in mapping.items():
                if source not in self.bedrock_models.all_ids:
                    raise ValueError(f"regional_model_ids[{region!r}] translates {source!r}, which no setting names")
                _check_model_id(target)
        problems = [
            f"{region}: {problem}"
            for region in self.regions
            for model_id in self.models_in(region).all_ids
            if (problem := catalogue().problem(model_id, region, allow_global=self.allow_global_inference))
        ]
        if problems:
            raise ValueError("Bedrock models a region cannot call:\n  " + "\n  ".join(problems))
        return self

    @model_validator(mode="after")
    def _check_agent_layers(self) -> PlatformConfig:
        for region, arn in self.appconfig_agent_layers.items():
            match = _LAYER_ARN.match(arn)
            if not match or match.group(1) != region:
                raise ValueError(f"appconfig_agent_layers[{region!r}] must be a layer version ARN in {region}: {arn!r}")
        return self

    @model_validator(mode="after")
    def _check_prices(self) -> PlatformConfig:
        called = {m for region in self.regions for m in self.models_in(region).all_ids}
        missing = sorted(m for m in called if m not in self.model_prices)
        if missing:
            raise ValueError(f"model_prices has no price for {missing}: cost dashboards need one per model")
        if any(p < 0 for pair in self.model_prices.values() for p in pair):
            raise ValueError("model_prices must not be negative")
        return self

    @model_validator(mode="after")
    def _check_endpoint(self) -> PlatformConfig:
        endpoint = self.serving.endpoint
        if endpoint.enabled:
            missing = [r for r in self.regions if r not in endpoint.base_model_uris]
            if missing:
                raise ValueError(
                    f"serving.endpoint.base_model_uris has no base model for {missing}: each region's endpoint "
                    "reads its weights from a bucket in its own region"
                )
        # A strategy that sends traffic to an endpoint this deployment does not provision would fail
        # every such request; refuse it at synth rather than open circuits in production.
        for use_case, entry in load_strategy()["use_cases"].items():
            for variant in entry["variants"]:
                if variant["provider"] == "sagemaker" and variant["weight"] > 0 and not endpoint.enabled:
                    raise ValueError(
                        f"strategy {use_case}:{variant['name']} sends traffic to a SageMaker endpoint, "
                        "but serving.endpoint.enabled is false"
                    )
                if variant["provider"] == "sagemaker" and variant.get("target") != endpoint.target:
                    raise ValueError(
                        f"strategy {use_case}:{variant['name']} names endpoint target "
                        f"{variant.get('target')!r}; this deployment serves {endpoint.target!r}"
                    )
        return self

    @model_validator(mode="after")
    def _check_cross_fields(self) -> PlatformConfig:
        if self.primary_region == self.secondary_region:
            raise ValueError("primary_region and secondary_region must differ")
        if (self.domain_name is None) != (self.hosted_zone_id is None):
            raise ValueError("domain_name and hosted_zone_id go together: set both or neither")
        if self.dns_failover_enabled and not self.monitoring.alarms_enabled:
            raise ValueError("DNS failover reads the model-path alarms: it needs monitoring.alarms_enabled")
        if self.dns_failover_enabled and self.api_auth == "iam":
            # SigV4 signs the region into the credential scope, and API Gateway rejects a request
            # signed for another region: after a DNS failover every signed call would get 403.
            raise ValueError(
                "api_auth=iam cannot be combined with DNS failover: a request signed for one region is "
                "rejected by the other; use api_auth=api_key (one key per client, valid in both regions)"
            )
        if self.usage_plan.burst_limit < self.usage_plan.rate_limit:
            raise ValueError("usage_plan.burst_limit must be at least rate_limit")
        return self

    def models_in(self, region: str) -> RegionModels:
        translation = dict(self.regional_model_ids.get(region, {}))
        return RegionModels(
            region=region,
            translation=translation,
            primary=tuple(translation.get(m, m) for m in self.bedrock_models.primary),
            fallback=translation.get(self.bedrock_models.fallback, self.bedrock_models.fallback),
        )

    def strategy_for(self, region: str) -> dict[str, Any]:
        """The strategy document as this region's AppConfig serves it (model ids translated)."""
        models = self.models_in(region)
        strategy = load_strategy()
        for entry in strategy["use_cases"].values():
            for variant in entry["variants"]:
                if variant["provider"] == "bedrock":
                    variant["model_id"] = models.translate(variant["model_id"])
        endpoint = self.serving.endpoint
        if endpoint.enabled:
            variants = strategy["use_cases"]["budgeting_advice"]["variants"]
            if not any(v["provider"] == "sagemaker" for v in variants):
                variants.append(endpoint.variant())
        budgets = self.budgets if self.budgets is not None else strategy.get("budgets")
        if budgets is not None:
            prices = {m: list(p) for m, p in sorted(self.model_prices.items())}
            strategy["budgets"] = {**budgets, "prices": prices}
        return strategy

    @property
    def budget_clients(self) -> tuple[str, ...]:
        """Who budgets are charged to: the API clients, or every signed caller as "iam"."""
        return ("iam",) if self.api_auth == "iam" else self.api_clients

    @property
    def regions(self) -> tuple[str, str]:
        return (self.primary_region, self.secondary_region)

    @property
    def dns_failover_enabled(self) -> bool:
        return self.domain_name is not None


def _none_if_blank(value: Any) -> Any:
    return None if value in ("", None) else value


def load_config(context: dict[str, Any]) -> PlatformConfig:
    """Build the config from a CDK context mapping (``cdk.json`` plus ``-c`` overrides).

    Values given on the command line arrive as strings, so JSON-looking strings are decoded.
    """
    unknown = set(context) - set(CONTEXT_KEYS)
    if unknown:
        raise ValueError(f"unknown context keys {sorted(unknown)}; known keys are {list(CONTEXT_KEYS)}")
    values: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        if key not in context:
            continue
        value = context[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            value = json.loads(value)
        values[key] = _none_if_blank(value)
    models = values.pop("bedrock_models", None)
    fallback = values.pop("fallback_model", None)
    values["bedrock_models"] = {"primary": models, "fallback": fallback}
    config = PlatformConfig.model_validate(values)
    check_strategy_against_config(config)
    return config


def use_case_names() -> tuple[str, ...]:
    """The use cases, as the strategy schema requires them (the API model's enum comes from here)."""
    schema = json.loads(STRATEGY_SCHEMA.read_text())
    return tuple(schema["properties"]["use_cases"]["required"])


def load_strategy() -> dict[str, Any]:
    return json.loads(STRATEGY_DOCUMENT.read_text())


def check_strategy_against_config(config: PlatformConfig) -> None:
    """Fail synth when the shipped strategy names a Bedrock model that IAM would not allow."""
    import jsonschema  # imported here: only synth needs it

    strategy = load_strategy()
    schema = json.loads(STRATEGY_SCHEMA.read_text())
    jsonschema.validate(strategy, schema)
    for region in config.regions:
        try:
            jsonschema.validate(config.strategy_for(region), schema)
        except jsonschema.ValidationError as exc:
            raise ValueError(f"the strategy for {region} (with the budgets setting) is invalid: {exc.message}") from exc
    budgets = config.strategy_for(config.primary_region).get("budgets") or {}
    for who, limits in [("default", budgets.get("default", [])), *budgets.get("clients", {}).items()]:
        pairs = [(limit["period"], limit["unit"]) for limit in limits]
        if len(set(pairs)) != len(pairs):
            # One counter per period and unit: DynamoDB refuses a transaction that names an item twice.
            raise ValueError(f"budgets for {who!r} limit the same period and unit twice: {pairs}")
    unknown = sorted(set(budgets.get("clients", {})) - set(config.budget_clients))
    if unknown:
        known = list(config.budget_clients)
        raise ValueError(f"budgets name clients {unknown} that have no API key; the clients are {known}")
    allowed = set(config.bedrock_models.all_ids)
    for use_case, entry in strategy["use_cases"].items():
        for variant in entry["variants"]:
            if variant["provider"] == "bedrock" and variant["model_id"] not in allowed:
                raise ValueError(
                    f"strategy use case {use_case!r} names {variant['model_id']!r}, "
                    f"which is not in bedrock_models {sorted(allowed)}"
                )
