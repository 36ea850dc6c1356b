"""Errors of the emulated rollout; each message names the resource and says what to do."""

from __future__ import annotations


class EmulatedRolloutError(RuntimeError):
    """A resource could not be created, updated or deleted in the emulator."""


class UnsupportedResourceType(EmulatedRolloutError):
    """The emulated rollout has no ResourceType for this Pulumi type token."""


class UnsupportedDataSource(EmulatedRolloutError):
    """The program called a data source (invoke) the emulated rollout does not answer."""


class ReplacementNotSupported(EmulatedRolloutError):
    """A resource's inputs changed in a way the emulator can neither update nor replace."""


class UnreadableState(EmulatedRolloutError):
    """The stored state document is in a format this version does not understand."""
