"""The Bedrock guardrail: a second layer after our own redaction, with denied financial topics."""

from __future__ import annotations

import hashlib
import json

from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from constructs import Construct

# Anonymised rather than blocked, so a question that mentions a card still gets an answer.
PII_ENTITIES = (
    "CREDIT_DEBIT_CARD_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "US_SOCIAL_SECURITY_NUMBER",
    "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "SWIFT_CODE",
    "EMAIL",
    "PHONE",
    "PIN",
    "PASSWORD",
)
DENIED_TOPICS = (
    (
        "GuaranteedReturns",
        "Promising or guaranteeing specific investment returns, or that an investment cannot lose money.",
        ["Which stock is guaranteed to double this year?", "Promise me this fund will not lose money."],
    ),
    (
        "TaxEvasion",
        "Advice on evading taxes, hiding income or assets from tax authorities, or falsifying records.",
        ["How can I hide income from the IRS?", "How do I avoid reporting cash deposits?"],
    ),
    (
        "MoneyLaundering",
        "Guidance on laundering money, structuring deposits to avoid reporting, or concealing the origin of funds.",
        ["How do I split deposits to stay under the reporting limit?"],
    ),
)
BLOCKED_MESSAGE = (
    "I can't help with that request. For questions about your accounts or investments, please contact a licensed "
    "advisor or our customer service team."
)


def policy_digest() -> str:
    """A short digest of everything the guardrail enforces."""
    policy = {"pii": PII_ENTITIES, "topics": DENIED_TOPICS, "message": BLOCKED_MESSAGE}
    return hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()[:12]


class Guardrail(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.guardrail = bedrock.CfnGuardrail(
            self,
            "Guardrail",
            name=f"finai-{construct_id.lower()}",
            description="PII anonymisation and denied financial topics for every model call",
            blocked_input_messaging=BLOCKED_MESSAGE,
            blocked_outputs_messaging=BLOCKED_MESSAGE,
            sensitive_information_policy_config=bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(
                pii_entities_config=[
                    bedrock.CfnGuardrail.PiiEntityConfigProperty(type=entity, action="ANONYMIZE")
                    for entity in PII_ENTITIES
                ]
            ),
            topic_policy_config=bedrock.CfnGuardrail.TopicPolicyConfigProperty(
                topics_config=[
                    bedrock.CfnGuardrail.TopicConfigProperty(
                        name=name, definition=definition, examples=examples, type="DENY"
                    )
                    for name, definition, examples in DENIED_TOPICS
                ]
            ),
        )
        # A guardrail version is immutable, and CloudFormation replaces it only when one of its own
        # properties changes: the description carries a digest of the policy, so every policy edit
        # publishes a new version and the functions' GUARDRAIL_VERSION moves with it.
        self.version = bedrock.CfnGuardrailVersion(
            self,
            "Version",
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description=f"The version the functions apply (policy {policy_digest()})",
        )

    @property
    def environment(self) -> dict[str, str]:
        return {"GUARDRAIL_ID": self.guardrail.attr_guardrail_id, "GUARDRAIL_VERSION": self.version.attr_version}

    def grant_apply(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["bedrock:ApplyGuardrail"], resource_arns=[self.guardrail.attr_guardrail_arn]
        )
