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
from collections.abc import Callable, Iterator
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


Span = tuple[int, int]


@dataclass(frozen=True)
class Detector:
    """A kind of item and how to find it. Either a pattern with an ``accept`` check (which returns
    the span to replace, or None to keep the text), or a ``finder`` that yields spans itself.

    Every pattern is bounded (no unbounded repetition that can backtrack over the whole input), so
    each detector is linear in the text; tests/unit/test_pii.py times growing adversarial inputs.
    """

    kind: str
    pattern: re.Pattern[str] | None = None
    accept: Callable[[re.Match[str]], Span | None] | None = None
    finder: Callable[[str], Iterator[Span]] | None = None

    def spans(self, text: str) -> Iterator[Span]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        if self.pattern is None or self.accept is None:
            raise TypeError(f"detector {self.kind} needs a pattern and an accept check, or a finder")
        position = 0
        while (match := self.pattern.search(text, position)) is not None:
            span = self.accept(match)
            if span is None:
                # A rejected candidate (say, a failed checksum) may overlap a valid one: look again
                # from the next character, not from the end of the rejected match.
                position = match.start() + 1
                continue
            yield span
            position = max(span[1], match.start() + 1)


def _whole(check: Callable[[str], bool] | None = None, group: int = 0) -> Callable[[re.Match[str]], Span | None]:
    def accept(match: re.Match[str]) -> Span | None:
        value = match.group(group)
        if check is not None and not check(value):
            return None
        return match.span(group)

    return accept


def _digits(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: check(re.sub(r"\D", "", value))


# E-mail: found from each '@' outward with bounded scans (RFC 5321: a local part of at most 64
# characters, a domain of at most 253), so the cost is linear in the text. A pattern such as
# [chars]+@ retried at every start of a long run of such characters costs quadratic time: 50,000
# characters took 5 s. Letters and digits are Unicode's, so addresses like josé@exämple.com count.
_LOCAL_PUNCTUATION = frozenset("._%+-")
_MAX_LOCAL, _MAX_DOMAIN = 64, 253


def _is_local(char: str) -> bool:
    return char.isalnum() or char in _LOCAL_PUNCTUATION


def _domain_valid(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2 or not all(0 < len(label) <= 63 for label in labels):
        return False
    if any(label[0] == "-" or label[-1] == "-" for label in labels):
        return False
    tld = labels[-1]
    return len(tld) >= 2 and all(c.isalpha() for c in tld)


def _emails(text: str) -> Iterator[Span]:
    position = 0
    while (at := text.find("@", position)) != -1:
        position = at + 1
        start = at
        while start > 0 and at - start < _MAX_LOCAL and _is_local(text[start - 1]):
            start -= 1
        if start == at or (start > 0 and _is_local(text[start - 1])) or text[start] == ".":
            continue  # no local part, or one longer than any address has
        end = at + 1
        while end < len(text) and end - at <= _MAX_DOMAIN and (text[end].isalnum() or text[end] in ".-"):
            end += 1
        domain = text[at + 1 : end].rstrip(".-")  # a sentence may end right after the address
        if _domain_valid(domain):
            yield start, at + 1 + len(domain)
            position = at + 1 + len(domain)


# Three-letter codes that make "USDCAD1M" an FX pair with a tenor, not a SWIFT code (ISO 4217,
# the currencies a bank's text names most).
CURRENCIES = frozenset(
    _words(
        "AED ARS AUD BGN BRL CAD CHF CLP CNH CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JPY KES KRW "
        "KWD MAD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RUB SAR SEK SGD THB TRY TWD UAH USD VND XAG XAU ZAR"
    )
)


def _not_fx_pair(code: str) -> bool:
    return not (code[:3].upper() in CURRENCIES and code[3:6].upper() in CURRENCIES)


def _not_year_range(value: str) -> bool:
    # "account 2023-2024" names statement years, not an account number.
    return re.fullmatch(r"(?:19|20)\d\d\s?[-/\u2013]\s?(?:19|20)?\d\d", value.strip()) is None


# A phone number never touches another digit group: "9400 1000" inside a 22-digit tracking
# number is not a Singapore number.
_NO_DIGIT_BEFORE = r"(?<![\w.+$\u20ac\u00a3\u00a5])(?<!\d[\s.-])"
_NO_DIGIT_AFTER = r"(?![\w\u20ac\u00a3\u00a5])(?![.,]\d)(?![\s.-]\d)"

DETECTORS: tuple[Detector, ...] = (
    Detector("EMAIL", finder=_emails),
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
        # 123-45-6789 or 123 45 6789 (one separator throughout), not part of a longer digit group.
        re.compile(r"(?<![\d-])(?<!\d )(\d{3})([- ])(\d{2})\2(\d{4})(?!\d)(?![- ]\d)"),
        lambda m: m.span() if ssn_valid(m.group(1), m.group(3), m.group(4)) else None,
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
        _whole(lambda v: _not_year_range(v) and 6 <= len(re.sub(r"\D", "", v)) <= 17, group=1),
    ),
    Detector(
        "SWIFT",
        re.compile(r"(?i)\b(?:swift|bic)(?: code)?\s*(?:is|:)?\s*([A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b"),
        _whole(lambda code: code[4:6].upper() in COUNTRY_CODES, group=1),
    ),
    Detector(
        "SWIFT",
        re.compile(r"\b([A-Z]{4}([A-Z]{2})\d[A-Z0-9](?:[A-Z0-9]{3})?)\b"),
        lambda m: m.span(1) if m.group(2) in COUNTRY_CODES and _not_fx_pair(m.group(1)) else None,
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
        # North America: (212) 555-0199, (212)555-0199, 212-555-0199, 212.555.0199, +1 212 555 0199,
        # and ten bare digits (area code and exchange both start 2-9).
        re.compile(
            _NO_DIGIT_BEFORE
            + r"(?:\+?1[\s.-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[\s.-])[2-9]\d{2}[\s.-]\d{4}"
            + _NO_DIGIT_AFTER
            + "|"
            + _NO_DIGIT_BEFORE
            + r"(?:\+1[\s.-]?)?[2-9]\d{2}[2-9]\d{6}"
            + _NO_DIGIT_AFTER
        ),
        _whole(_digits(lambda d: 10 <= len(d) <= 11)),
    ),
    Detector(
        "PHONE",
        # United Kingdom: 020 7946 0958, 07700 900123, 0161 496 0000, +44 20 7946 0958,
        # +44 (0)20 7946 0958, +44 (0)7700 900123: ten digits after the 0 or +44.
        re.compile(_NO_DIGIT_BEFORE + r"(?:\+44\s?(?:\(0\)\s?)?|0)([1-9](?:[\s-]?\d){9})" + _NO_DIGIT_AFTER),
        _whole(),
    ),
    Detector(
        "PHONE",
        # Other international numbers: +852 2123 4567, +65 9123 4567, +49 30 123456.
        re.compile(r"(?<![\w.])\+(?:[2-9]\d{0,2})[\s.-]?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}" + _NO_DIGIT_AFTER),
        _whole(_digits(lambda d: 8 <= len(d) <= 15)),
    ),
    Detector(
        "PHONE",
        # Singapore: eight digits starting 3, 6, 8 or 9, as 9123 4567 or 91234567.
        re.compile(_NO_DIGIT_BEFORE + r"[3689]\d{3}[\s-]?\d{4}" + _NO_DIGIT_AFTER),
        _whole(),
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
        pieces, last = [], 0
        for start, end in detector.spans(text):
            if start < last:  # spans come in order; an overlapping one is already covered
                continue
            pieces.append(text[last:start])
            pieces.append(f"[{detector.kind}]")
            last = end
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
