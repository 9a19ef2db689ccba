"""Static, pre-approved answers for when no model can answer.

The degradation function serves them; the front serves them itself when the request path does
not answer in time, so even a timeout ends in an answer.

Wording like this is normally owned by a compliance team; it lives in one place so it can be
reviewed as a unit. Disclaimers are attached per use case, only where they apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shared.use_cases import UseCase

# What an answer from this module reports as its model, whoever serves it.
STATIC_MODEL = "static-degraded-response"
NOT_ADVICE = (
    "This information is general in nature and is not financial, investment, tax or legal advice. "
    "Consider speaking with a licensed professional about your circumstances."
)
FDIC = (
    "Deposit products are offered by our bank, Member FDIC. Deposits are insured by the FDIC up to "
    "the maximum allowed by law (standard coverage is $250,000 per depositor, per insured bank, for "
    "each account ownership category)."
)
EQUAL_HOUSING = "Equal Housing Lender."
SECURITY = "We will never ask for your password, PIN or full card number by e-mail, chat or text message."
OPT_OUT = "You can opt out of marketing messages at any time in your account settings."
AUTOMATION_NOTICE = (
    "Our automated assistant is temporarily unavailable, so this is a standard response rather "
    "than an answer to your specific question."
)


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    url: str

    def line(self) -> str:
        return f"For help, contact {self.name} at {self.phone} or visit {self.url}."


_BODIES: dict[UseCase, tuple[str, tuple[str, ...]]] = {
    UseCase.GENERAL: (
        "We can't answer your question right now. Please try again shortly.",
        (NOT_ADVICE,),
    ),
    UseCase.PRODUCT_QUESTION: (
        "Details of our accounts, cards, loans and mortgages, including current rates and fees, are "
        "in the official product terms on our website and in branch.",
        (FDIC, EQUAL_HOUSING, NOT_ADVICE),
    ),
    UseCase.ACCOUNT_INQUIRY: (
        "For questions about your own account, please sign in to online banking or the mobile app, "
        "or call us so we can verify your identity first.",
        (SECURITY, FDIC),
    ),
    UseCase.COMPLIANCE: (
        "We can't provide regulatory guidance right now. Please refer to the published regulation "
        "or contact our compliance team for an authoritative interpretation.",
        (NOT_ADVICE,),
    ),
    UseCase.PERSONALIZED_OUTREACH: (
        "Personalised messages are paused for the moment. No message has been generated or sent.",
        (OPT_OUT,),
    ),
    UseCase.BUDGETING_ADVICE: (
        "A common starting point is to review your largest spending categories and recurring "
        "subscriptions each month, and to set aside a fixed amount for savings when you are paid.",
        (NOT_ADVICE,),
    ),
    UseCase.SENTIMENT: (
        "Sentiment analysis is unavailable right now, so no sentiment label was produced for your "
        "text. Please try again shortly.",
        (NOT_ADVICE,),
    ),
}


def static_answer(use_case: UseCase, contact: Contact) -> tuple[str, tuple[str, ...]]:
    """The full answer text and the disclaimers it carries."""
    body, disclaimers = _BODIES.get(use_case, _BODIES[UseCase.GENERAL])
    text = " ".join((AUTOMATION_NOTICE, body, contact.line(), *disclaimers))
    return text, disclaimers


def contact_from_env(env: dict[str, str] | None = None) -> Contact:
    env = dict(os.environ if env is None else env)
    return Contact(
        name=env.get("CONTACT_NAME", "our customer service team"),
        phone=env.get("CONTACT_PHONE", "the number on the back of your card"),
        url=env.get("CONTACT_URL", "our website's help centre"),
    )
