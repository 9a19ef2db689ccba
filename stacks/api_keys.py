"""Client API keys that every region accepts.

Each client's key value lives in one Secrets Manager secret in the primary region, replicated to
the secondary; both regions' API Gateway keys take their value from it by name (a CloudFormation
dynamic reference, so the value never appears in a template). A client therefore holds one key
that keeps working after a DNS failover.

The secrets are retained when the stack is destroyed, so a region can be rebuilt without
reissuing every client's credential. To rotate, issue the client a second key (a new client name
in ``api_clients``), deploy, let the client switch, then remove the old name.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.compliance import acknowledge
from stacks.common import PlatformKey

SECRET_PREFIX = "finai/api-keys/"  # noqa: S105  # nosec B105 - a name prefix, not a secret
KEY_LENGTH = 40  # API Gateway accepts 20 to 128 characters


def api_key_secret_name(client: str) -> str:
    return f"{SECRET_PREFIX}{client}"


def api_key_value_reference(client: str) -> str:
    """What a regional stack puts in its API key's Value: resolved by CloudFormation at deploy time."""
    return f"{{{{resolve:secretsmanager:{api_key_secret_name(client)}:SecretString}}}}"


class ApiKeys(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, clients: tuple[str, ...], replica_regions: tuple[str, ...]
    ) -> None:
        super().__init__(scope, construct_id)
        key = PlatformKey(self, "Key").key
        self.secrets: dict[str, secretsmanager.Secret] = {}
        for client in clients:
            secret = secretsmanager.Secret(
                self,
                f"Client-{client}",
                secret_name=api_key_secret_name(client),
                description=f"API key of client {client}, accepted by every region",
                encryption_key=key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=KEY_LENGTH, exclude_punctuation=True, include_space=False
                ),
                # The replica is encrypted with the secondary region's AWS-managed Secrets Manager
                # key: a customer key there would belong to the other region's stack.
                replica_regions=[secretsmanager.ReplicaRegion(region=r) for r in replica_regions],
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.secrets[client] = secret
        acknowledge(
            self,
            [
                (
                    "SMG4",
                    "API keys rotate by issuing a client a second key (a new client name) and retiring the old one "
                    "after the client has switched; an automatic rotation would change a key under a live client.",
                    None,
                ),
                (
                    "SecretsManagerRotationEnabled",
                    "API keys rotate by issuing a second key and retiring the old one (see README), not by a "
                    "rotation Lambda that would change a key under a live client.",
                    None,
                ),
            ],
        )


class ApiKeysStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        clients: tuple[str, ...],
        replica_regions: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.keys = ApiKeys(self, "ApiKeys", clients=clients, replica_regions=replica_regions)
