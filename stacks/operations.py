"""Where alarms go: an encrypted SNS topic, with an optional e-mail subscription."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class Operations(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, alarm_email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Alarms", display_name="FinAI platform alarms", master_key=key, enforce_ssl=True)
        # CloudWatch publishes alarm notifications to the encrypted topic with this key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
