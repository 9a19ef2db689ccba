"""PII redaction: a synthetic corpus is fully redacted, clean financial text is untouched,
and redaction is idempotent."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.pii import aba_valid, iban_valid, luhn_valid, redact

RNG = random.Random(20261122)


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(str(RNG.randrange(10)) for _ in range(length - len(prefix) - 1))
    return next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))


def iban(country: str, length: int) -> str:
    bban = "".join(str(RNG.randrange(10)) for _ in range(length - 4))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def routing() -> str:
    while True:
        candidate = "".join(str(RNG.randrange(10)) for _ in range(9))
        if aba_valid(candidate):
            return candidate


def card_formats(number: str) -> list[str]:
    return [
        number,
        " ".join(number[i : i + 4] for i in range(0, len(number), 4)),
        "-".join(number[i : i + 4] for i in range(0, len(number), 4)),
    ]


CARDS = [luhn_complete(p, n) for p, n in (("4", 16), ("51", 16), ("37", 15), ("6011", 16), ("4", 13), ("35", 16))]
IBANS = [iban("GB", 22), iban("DE", 22), iban("FR", 27), iban("NL", 18), iban("ES", 24)]
TEMPLATES = [
    ("My card {card} was declined at the grocery store, what should I do?", "card"),
    ("Please dispute the $49.99 charge on {card}; the CVV is {cvv}.", "card+cvv"),
    ("Send 2,500 EUR to IBAN {iban} (SWIFT {swift}) for my rent.", "iban+swift"),
    ("Set up direct deposit with routing number {routing} and account number {account}.", "routing+account"),
    ("I'm filing taxes, my SSN is {ssn} and my email is {email}.", "ssn+email"),
    ("Call me on {phone} about the mortgage pre-approval.", "phone"),
    ("Transfer from acct {account} to card {card} today.", "account+card"),
    ("Contact {email} or {phone} regarding account ending in {account}.", "email+phone+account"),
    ("Security code {cvv} for card {card}, expiry 09/28.", "card+cvv"),
    ("Our BIC is {swift} and the IBAN is {iban}.", "swift+iban"),
]


def corpus() -> list[tuple[str, list[str]]]:
    out = []
    for i in range(120):
        template, _ = TEMPLATES[i % len(TEMPLATES)]
        values = {
            "card": RNG.choice(card_formats(RNG.choice(CARDS))),
            "cvv": str(RNG.randrange(100, 10000)),
            "iban": RNG.choice(IBANS),
            "swift": RNG.choice(["NWBKGB2L", "DEUTDEFF500", "CHASUS33", "BNPAFRPP", "HSBCHKHH"]),
            "routing": routing(),
            "account": str(RNG.randrange(10**7, 10**12)),
            "ssn": f"{RNG.randrange(100, 665):03d}-{RNG.randrange(1, 99):02d}-{RNG.randrange(1, 9999):04d}",
            "email": RNG.choice(["jane.doe@example.com", "j.smith+bank@mail.example.org", "ops_team@bank.co.uk"]),
            "phone": RNG.choice(
                ["(415) 555-0132", "+1 212-555-0199", "+44 20 7946 0958", "+852 2123 4567", "646.555.0147"]
            ),
        }
        text = template.format(**values)
        secrets = [v for k, v in values.items() if "{" + k + "}" in template]
        out.append((text, secrets))
    return out


CLEAN = [
    "My balance is $12,345.67 and my savings account earns 4.25% APY.",
    "Between 2025-01-01 and 2025-12-31 I spent HKD 3,460 on rent each month.",
    "AAPL closed at 189.30, up 2.1%; $MSFT and $NVDA fell 0.8% on Q3 2025 guidance.",
    "Is a 401(k) match of 6% better than a Roth IRA contribution of $7,000 for 2026?",
    "The 30-year fixed mortgage rate is 6.875% with 1.5 points; loan amount 450,000.",
    "Invoice INV-2025-0042 for SGD 1,250.00 is due on 12/31/2025.",
    "My account balance is USD 2,340.12 and my credit limit is 15,000.",
    "Revenue grew from 1.2B to 1.45B, EPS 3.21 vs 2.98 expected, P/E 27.4.",
    "Savings rate: 18%. Top categories per month: Groceries HKD 1,195, Dining HKD 91.",
    "The FDIC insures deposits up to $250,000 per depositor, per insured bank.",
    "Order 1234567 shipped; tracking 9400 1000 0000 0000 0000 00 arrives Tuesday.",
    "Compound interest at 5% for 10 years turns 10,000 into 16,288.95.",
    "The meeting is at 10:30 on 2026-03-15 in room 4B; budget 25,000 to 30,000.",
    "ISIN US0378331005 identifies Apple; CUSIP 037833100.",
    "Pay 1/3 now and 2/3 in 90 days; fee 2.9% + 0.30 per transaction.",
]


@pytest.mark.parametrize(("text", "secrets"), corpus())
def test_synthetic_pii_corpus_is_fully_redacted(text, secrets):
    result = redact(text)
    for secret in secrets:
        assert secret not in result.text, (secret, result.text)
        digits = "".join(c for c in secret if c.isdigit())
        if len(digits) >= 6:
            assert digits not in "".join(c for c in result.text if c.isdigit()), (secret, result.text)
    assert result.total >= len(secrets)


@pytest.mark.parametrize("text", CLEAN)
def test_clean_financial_text_is_untouched(text):
    result = redact(text)
    assert result.text == text
    assert result.counts == {}


def test_checksums_reject_near_misses():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert aba_valid("021000021")
    assert not aba_valid("021000022")
    assert redact("card 4111 1111 1111 1112").counts == {}


pii = st.sampled_from([*CARDS, *IBANS, "jane.doe@example.com", "(415) 555-0132", "123-45-6789"])
text_with_pii = st.lists(st.one_of(st.text(max_size=30), pii), max_size=6).map(" ".join)


@given(text_with_pii)
def test_redaction_is_idempotent(text):
    once = redact(text).text
    assert redact(once).text == once
    assert redact(once).counts == {}


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_stays_idempotent(text):
    once = redact(text).text
    assert redact(once).text == once


def test_log_records_are_redacted():
    import logging

    from shared.observability import RedactingFormatter, logger

    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "customer wrote: card 4111 1111 1111 1111", None, None
    )
    record.note = "mail jane.doe@example.com"
    output = RedactingFormatter().format(record)
    assert "4111 1111 1111 1111" not in output
    assert "jane.doe@example.com" not in output
    assert "[CARD]" in output
    assert "[EMAIL]" in output
    assert any(isinstance(h.formatter, RedactingFormatter) for h in logger.handlers), "the shared logger uses it"


def test_prompts_are_redacted_before_the_model_and_counted():
    from local.request_path import local_request_path

    with local_request_path() as path:
        seen: list[str] = []
        original = path.bedrock.converse

        def capture(**request):
            seen.append(request["messages"][0]["content"][0]["text"])
            return original(**request)

        path.bedrock.converse = capture  # type: ignore[method-assign]
        result = path.execute(
            {
                "request_id": "r1",
                "use_case": "account_inquiry",
                "user_id": None,
                "prompt": "Why was card 4111 1111 1111 1111 declined? Email me at jane.doe@example.com",
            }
        )
        path.bedrock.fail("us.anthropic.claude-haiku-4-5-20251001-v1:0")
        path.execute(
            {
                "request_id": "r2",
                "use_case": "account_inquiry",
                "user_id": None,
                "prompt": "My SSN is 123-45-6789, is my account 12345678 frozen?",
            }
        )
    assert result["output"]["tier"] == "primary"
    assert seen, "the model was called"
    for prompt in seen:  # primary and fallback calls alike
        for secret in ("4111 1111 1111 1111", "jane.doe@example.com", "123-45-6789", "12345678"):
            assert secret not in prompt
    assert "[CARD]" in seen[0] and "[EMAIL]" in seen[0]


# Issue 14: formats that were missed, text that was wrongly redacted, and linear time.
MISSED = [
    ("SSN 123 45 6789 on file", "123 45 6789"),
    ("call 2125550199 tonight", "2125550199"),
    ("call (212)555-0199 tonight", "(212)555-0199"),
    ("office 020 7946 0958", "020 7946 0958"),
    ("mobile 07700 900123", "07700 900123"),
    ("landline 0161 496 0000", "0161 496 0000"),
    ("ring +44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
    ("ring +44 (0)7700 900123", "+44 (0)7700 900123"),
    ("ring +44 7700 900123", "+44 7700 900123"),
    ("SG mobile 9123 4567", "9123 4567"),
    ("SG office 61234567", "61234567"),
    ("SG +65 9123 4567", "+65 9123 4567"),
    ("write to josé.müller@exämple.de", "josé.müller@exämple.de"),
    ("write to 李雷@例子.中国", "李雷@例子.中国"),
]


@pytest.mark.parametrize(("text", "secret"), MISSED)
def test_formats_once_missed_are_redacted(text, secret):
    result = redact(text)
    assert secret not in result.text, result.text
    assert result.total == 1, result.counts


KEPT = [
    "Roll the USDCAD1M forward and price EURUSD3M and GBPJPY1Y.",
    "Please send the account 2023-2024 statements and the account 2019 - 2020 summary.",
    "Order 1234567 shipped; tracking 9400 1000 0000 0000 0000 00 arrives Tuesday.",
    "CUSIP 037833100 and ISIN US0378331005.",
    "Revenue of 91234567.50 and 6123 4567.8 units.",
]


@pytest.mark.parametrize("text", KEPT)
def test_financial_codes_are_not_taken_for_personal_data(text):
    assert redact(text).counts == {}, redact(text).text


def _generated_numbers() -> list[str]:
    """Real-looking numbers for the US, the UK and Singapore, judged valid by libphonenumber, in
    the formats people write them."""
    import phonenumbers as pn
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    rng = random.Random(14)
    numbers: list[str] = []
    for region in ("US", "GB", "SG"):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            example = pn.example_number_for_type(region, kind)
            national = str(example.national_number)
            made = 0
            while made < 6:
                digits = national[:4] + "".join(str(rng.randrange(10)) for _ in national[4:])
                candidate = pn.parse(f"+{example.country_code}{digits}", None)
                if not pn.is_valid_number(candidate) or pn.number_type(candidate) not in (kind, 2):
                    continue
                made += 1
                for fmt in (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164):
                    numbers.append(pn.format_number(candidate, fmt))
                if region == "GB":
                    numbers.append(
                        pn.format_number(candidate, PhoneNumberFormat.INTERNATIONAL).replace("+44 ", "+44 (0)")
                    )
    return numbers


@pytest.mark.parametrize("number", _generated_numbers())
def test_numbers_libphonenumber_calls_valid_are_redacted(number):
    result = redact(f"Please call me on {number} after 5pm.")
    digits = "".join(c for c in number if c.isdigit())
    assert digits[-7:] not in "".join(c for c in result.text if c.isdigit()), result.text
    assert result.counts == {"PHONE": 1}, result.counts


ADVERSARIAL = {
    "a run of e-mail characters": lambda n: "a" * n,
    "at signs": lambda n: "a@" * (n // 2),
    "dotted local parts": lambda n: ("a." * 31 + "a@") * (n // 64),
    "a long domain": lambda n: "x@" + "a" * n,
    "digits": lambda n: "1" * n,
    "spaced digits": lambda n: "1 " * (n // 2),
    "hyphenated digits": lambda n: "12-" * (n // 3),
    "plus signs": lambda n: "+1 " * (n // 3),
    "account context": lambda n: "account " + "1 " * (n // 2),
    "fx pairs": lambda n: "USDCAD1M " * (n // 9),
    "iban prefixes": lambda n: "GB12 " * (n // 5),
    "parenthesised area codes": lambda n: "(212) " * (n // 6),
    "uk prefixes": lambda n: "+44 (0)" * (n // 7),
}


def _best_time(text: str, runs: int = 3) -> float:
    import time

    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        redact(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_redaction_time_grows_linearly_with_adversarial_input(name):
    """Four times the input must cost about four times the time: the e-mail pattern used to be
    quadratic (50,000 characters took 5 s). A ratio, not an absolute time, so a slow machine passes
    and a quadratic detector (ratio ~16) fails."""
    make = ADVERSARIAL[name]
    small, large = _best_time(make(10_000)), _best_time(make(40_000))
    assert large / small < 8, f"{name}: {small * 1000:.1f} ms -> {large * 1000:.1f} ms"
