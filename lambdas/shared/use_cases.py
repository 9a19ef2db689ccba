"""The use cases the API serves. The strategy schema's required keys must match this list."""

from enum import StrEnum


class UseCase(StrEnum):
    GENERAL = "general"
    PRODUCT_QUESTION = "product_question"
    ACCOUNT_INQUIRY = "account_inquiry"
    COMPLIANCE = "compliance"
    PERSONALIZED_OUTREACH = "personalized_outreach"
    BUDGETING_ADVICE = "budgeting_advice"
    SENTIMENT = "sentiment"  # answered with a label (shared.sentiment), not free text


class Tier(StrEnum):
    PRIMARY = "primary"
    FALLBACK = "fallback"
    DEGRADED = "degraded"
