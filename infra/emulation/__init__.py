"""Emulated rollout: the Pulumi program under mocks that create every resource in a local
AWS emulator through boto3 and hand back the real IDs and ARNs.

``registry`` holds one ResourceType per Pulumi type token (how to create, check, update
and delete it, and how the offline preview names it); the service modules below define
them; ``engine`` diffs what the program declares against the recorded state and applies
the difference. Importing the package registers every type, so the registry is complete
whichever module is imported first.
"""

from infra.emulation import dynamodb, ec2, iam_kms, lambda_, logs_cloudwatch, messaging, signing  # noqa: F401  (register their types)
from infra.emulation.errors import (
    EmulatedRolloutError,
    ReplacementNotSupported,
    UnreadableState,
    UnsupportedDataSource,
    UnsupportedResourceType,
)

__all__ = [
    "EmulatedRolloutError",
    "ReplacementNotSupported",
    "UnreadableState",
    "UnsupportedDataSource",
    "UnsupportedResourceType",
]
