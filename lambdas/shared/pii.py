"""Redaction of personal and account data before any model call and in every log line.

Each detector pairs a pattern with a check that cuts false positives on ordinary financial text:
card numbers must pass Luhn, IBANs the ISO 7064 mod-97 check, routing numbers the ABA checksum;
CVVs, routing and account numbers and bare SWIFT codes are redacted only in their context
("CVV", "routing", "account", "SWIFT"). Placeholders contain no digits or '@', so redacting twice
changes nothing (tested with hypothesis).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _words(text: str) -> list[str]:
    return text.split()


COUNTRY_CODES = frozenset(
    _words(
        "AD AE AL AT AU AZ BA BE BG BH BR BY CA CH CN CR CY CZ DE DK DO EE EG ES "
        "FI FO FR GB GE GI GL GR GT HK HR HU IE IL IN IQ IS IT JO JP KR KW KZ LB "
        "LC LI LT LU LV MC MD ME MK MR MT MU MX MY NL NO NZ PK PL PS PT QA RO RS "
        "SA SC SE SG SI SK SM ST SV TH TL TN TR UA US VA VG XK ZA "
    )
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or compact[:2] not in COUNTRY_CODES:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def aba_valid(digits: str) -> bool:
    d = [int(c) for c in digits]
    return len(d) == 9 and (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0


def ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    # Returns the span of the match to replace (a group), or None to keep the text.
    accept: Callable[[re.Match[str]], tuple[int, int] | None]


def _whole(
    check: Callable[[str], bool] | None = None, group: int = 0
) -> Callable[[re.Match[str]], tuple[int, int] | None]:
    def accept(match: re.Match[str]) -> tuple[int, int] | None:
        value = match.group(group)
        if check is not None and not check(value):
            return None
        return match.span(group)

    return accept


def _digits(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: check(re.sub(r"\D", "", value))


DETECTORS: tuple[Detector, ...] = (
    Detector("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), _whole()),
    Detector(
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        _whole(iban_valid),
    ),
    Detector(
        "CARD",
        # A maximal run of digit groups: no digit may touch it, even across a space or hyphen.
        re.compile(r"(?<![\d.,])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![\d.,]\d)(?![ -]\d)"),
        _whole(_digits(lambda d: 13 <= len(d) <= 19 and luhn_valid(d))),
    ),
    Detector(
        "SSN",
        re.compile(r"\b(\d{3})-(\d{2})-(\d{4})\b"),
        lambda m: m.span() if ssn_valid(m.group(1), m.group(2), m.group(3)) else None,
    ),
    Detector(
        "SSN",
        re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\s*(?:is|:|#)?\s*(\d{9})\b"),
        _whole(group=1),
    ),
    Detector(
        "ROUTING",
        re.compile(r"(?i)\b(?:routing|aba|rtn|transit)(?: number| no\.?| #)?\s*(?:is|:|#)?\s*(\d{9})\b"),
        _whole(aba_valid, group=1),
    ),
    Detector(
        "ACCOUNT",
        re.compile(r"(?i)\b(?:account|acct|a/c)(?: number| no\.?| #)?\s*(?:is|:|#|ending in)?\s*(\d[\d -]{4,20}\d)\b"),
        _whole(_digits(lambda d: 6 <= len(d) <= 17), group=1),
    ),
    Detector(
        "SWIFT",
        re.compile(r"(?i)\b(?:swift|bic)(?: code)?\s*(?:is|:)?\s*([A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b"),
        _whole(lambda code: code[4:6].upper() in COUNTRY_CODES, group=1),
    ),
    Detector(
        "SWIFT",
        re.compile(r"\b([A-Z]{4}([A-Z]{2})\d[A-Z0-9](?:[A-Z0-9]{3})?)\b"),
        lambda m: m.span(1) if m.group(2) in COUNTRY_CODES else None,
    ),
    Detector(
        "CVV",
        re.compile(
            r"(?i)\b(?:cvv2?|cvc2?|cid|security code|card verification(?: value| code)?)\s*(?:is|:|#)?\s*(\d{3,4})\b"
        ),
        _whole(group=1),
    ),
    Detector(
        "PHONE",
        re.compile(
            r"(?<![\w.])(?:\+1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\w|\.\d)"
            r"|(?<![\w.])\+(?:[2-9]\d{0,2})[\s.-]?\d{1,4}(?:[\s.-]?\d{2,4}){2,4}(?!\w|\.\d)"
        ),
        _whole(_digits(lambda d: 10 <= len(d) <= 15)),
    ),
)


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


MAX_PASSES = 5


def _one_pass(text: str, counts: Counter[str]) -> tuple[str, int]:
    found = 0
    for detector in DETECTORS:
        pieces, last, position = [], 0, 0
        while (match := detector.pattern.search(text, position)) is not None:
            span = detector.accept(match)
            if span is None:
                # A rejected candidate (say, a failed checksum) may overlap a valid one: look again
                # from the next character, not from the end of the rejected match.
                position = match.start() + 1
                continue
            start, end = span
            pieces.append(text[last:start])
            pieces.append(f"[{detector.kind}]")
            last = position = end
            counts[detector.kind] += 1
            found += 1
        if pieces:
            pieces.append(text[last:])
            text = "".join(pieces)
    return text, found


def redact(text: str) -> Redaction:
    """Replace every detected item with ``[KIND]``; counts say how many of each kind were found.

    Removing one item can expose another (a card number was only rejected because digits of an
    SSN touched it), so passes repeat until nothing changes: the result is a fixpoint, and
    redacting it again finds nothing.
    """
    counts: Counter[str] = Counter()
    for _ in range(MAX_PASSES):
        text, found = _one_pass(text, counts)
        if not found:
            break
    return Redaction(text, dict(counts))


def redact_value(value: Any) -> Any:
    """Redact strings anywhere inside a log record's structure."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value
