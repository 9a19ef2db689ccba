"""IAM policy evaluation for identity policies, close enough to AWS's to find what it would deny.

An explicit Deny wins, then any Allow, else the request is denied. Actions match case-insensitively
with ``*`` and ``?``; resources match case-sensitively. Conditions are evaluated for the operators
this platform writes (String*, Arn*, with ...IfExists); a condition key the request does not carry
makes the condition false, as in AWS. A resource still holding an unresolved template marker
(``<Ref:X>``) matches nothing, so a grant we could not resolve counts as missing, never as present.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: '*' any run of characters (across ':' and '/'), '?' one character.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE if ignore_case else 0)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if "<" in pattern and ">" in pattern:  # an unresolved reference: it stands for nothing we know
        return False
    return bool(_pattern(pattern, ignore_case).match(value))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def parse(cls, raw: dict[str, Any], source: str = "") -> Statement:
        return cls(
            effect=raw["Effect"],
            actions=tuple(_as_list(raw.get("Action"))),
            not_actions=tuple(_as_list(raw.get("NotAction"))),
            resources=tuple(str(r) for r in _as_list(raw.get("Resource"))),
            not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource"))),
            conditions=dict(raw.get("Condition") or {}),
            source=source,
        )

    def covers_action(self, action: str) -> bool:
        if self.actions:
            return any(matches(a, action, ignore_case=True) for a in self.actions)
        return not any(matches(a, action, ignore_case=True) for a in self.not_actions)

    def covers_resource(self, resource: str) -> bool:
        if self.resources:
            return any(matches(r, resource) for r in self.resources)
        return not any(matches(r, resource) for r in self.not_resources)

    def conditions_hold(self, context: dict[str, str]) -> bool:
        return all(
            _condition(op, key, values, context)
            for op, pairs in self.conditions.items()
            for key, values in pairs.items()
        )

    def applies(self, action: str, resource: str, context: dict[str, str]) -> bool:
        return self.covers_action(action) and self.covers_resource(resource) and self.conditions_hold(context)


def _condition(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = context.get(key)
    if actual is None:
        return if_exists or (base == "Null" and str(expected).lower() == "true")
    values = [str(v) for v in _as_list(expected)]
    negated = base.startswith(("StringNot", "ArnNot"))
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        hit = actual in values
    elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        hit = actual.lower() in (v.lower() for v in values)
    elif base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        hit = any(fnmatch.fnmatchcase(actual, v) for v in values)
    elif base == "Null":
        return str(expected).lower() == "false"
    else:
        raise NotImplementedError(f"condition operator {operator} is not evaluated here; add it")
    return not hit if negated else hit


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    statement: Statement | None = None


def evaluate(
    statements: Iterable[Statement], action: str, resource: str, context: dict[str, str] | None = None
) -> Decision:
    context = context or {}
    allow: Statement | None = None
    for statement in statements:
        if not statement.applies(action, resource, context):
            continue
        if statement.effect == "Deny":
            return Decision(False, "explicit deny", statement)
        allow = allow or statement
    if allow is not None:
        return Decision(True, "allowed", allow)
    return Decision(False, "no statement allows it")
