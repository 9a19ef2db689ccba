"""Routing decisions, free of Lambda events and AWS clients so they test in isolation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.circuits import TIMESTAMP_FORMAT
from shared.strategy import Strategy, Variant
from shared.use_cases import UseCase

# A probe needs an answer, not a long one.
PROBE_MAX_TOKENS = 20


def bucket(sticky_key: str, total_weight: int) -> int:
    """A stable bucket in ``[0, total_weight)`` for a key, the same in every process and region."""
    digest = hashlib.sha256(sticky_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % total_weight


def choose_variant(variants: tuple[Variant, ...], sticky_key: str) -> Variant:
    """Weighted choice, sticky per key: one user always lands in the same A/B arm."""
    live = [v for v in variants if v.weight > 0]
    point = bucket(sticky_key, sum(v.weight for v in live))
    for variant in live:
        if point < variant.weight:
            return variant
        point -= variant.weight
    raise AssertionError("unreachable: point is below the total weight")


def breaker_clock(now: datetime, cooldown_seconds: int) -> dict[str, str]:
    """The times the state machine compares circuit timestamps with, in whole seconds.

    The router is the breaker's single clock: it stamps ``opened_at`` (``now``), says which
    circuits have cooled down (opened at or before ``cooldown_cutoff``) and when a circuit opened
    now may be probed (``probe_after``). Timestamps are whole seconds, so ``now`` is rounded up
    and the cutoff down: a circuit opened at 10:00:00.4 is stamped 10:00:01 and may be probed at
    10:00:31 at the earliest, never before the cooldown it promises (rounding both down let a
    probe go out up to a second early).
    """
    now = now.astimezone(UTC)
    floor = now.replace(microsecond=0)
    ceiling = floor if now == floor else floor + timedelta(seconds=1)
    return {
        "now": ceiling.strftime(TIMESTAMP_FORMAT),
        "cooldown_cutoff": (floor - timedelta(seconds=cooldown_seconds)).strftime(TIMESTAMP_FORMAT),
        "probe_after": (ceiling + timedelta(seconds=cooldown_seconds)).strftime(TIMESTAMP_FORMAT),
    }


def _selection(
    strategy: Strategy, use_case: UseCase, variant: Variant, now: datetime, max_tokens: int | None = None
) -> dict[str, Any]:
    """The selection the state machine carries through the request (or the probe)."""
    return {
        "use_case": str(use_case),
        "variant": variant.name,
        "provider": variant.provider,
        "model_id": variant.model_id,
        "target": variant.target,
        # What promotion wrote: the serving function loads exactly this artifact for the request.
        "artifact_uri": variant.artifact_uri,
        # A SageMaker variant: the adapter inference component to invoke, and how to read its answer.
        "inference_component": variant.inference_component,
        "answer_format": variant.answer_format,
        "max_tokens": variant.max_tokens if max_tokens is None else max_tokens,
        "temperature": variant.temperature,
        "top_p": variant.top_p,
        "system_prompt": strategy.use_cases[use_case].system_prompt,
        "strategy_version": strategy.version,
        "breaker": strategy.breaker.model_dump(),
        "clock": breaker_clock(now, strategy.breaker.cooldown_seconds),
    }


def select(
    strategy: Strategy, use_case: UseCase, *, user_id: str | None, request_id: str, now: datetime
) -> dict[str, Any]:
    """The selection the state machine carries through the request."""
    entry = strategy.use_cases[use_case]
    # Without a user the split is per request, which still honours the weights in aggregate.
    variant = choose_variant(entry.variants, f"{use_case}:{user_id or request_id}")
    return _selection(strategy, use_case, variant, now)


def probe_use_case(strategy: Strategy, model_id: str) -> tuple[UseCase, Variant] | None:
    """A use case and variant that call ``model_id``, for a probe sent without a user.

    Free-text use cases come first: a sentiment probe can fail on the label alone, which says
    nothing about the model.
    """
    found = [
        (use_case, variant)
        for use_case, entry in strategy.use_cases.items()
        for variant in entry.variants
        if variant.model_id == model_id
    ]
    found.sort(key=lambda pair: pair[0] is UseCase.SENTIMENT)
    return found[0] if found else None


def select_probe(strategy: Strategy, model_id: str, *, now: datetime) -> dict[str, Any] | None:
    """The selection for a probe of ``model_id``, or None when no variant calls that model."""
    found = probe_use_case(strategy, model_id)
    if found is None:
        return None
    use_case, variant = found
    return _selection(strategy, use_case, variant, now, min(variant.max_tokens, PROBE_MAX_TOKENS))
