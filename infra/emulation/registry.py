"""One ResourceType per Pulumi type token: the single place that says how the emulated
rollout creates, checks, updates and deletes a type, and how the offline preview invents
realistic IDs and ARNs for it.

Adding a type means adding one decorated subclass in the service module it belongs to;
the engine and the preview read everything else from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from infra.emulation.errors import UnsupportedResourceType

if TYPE_CHECKING:
    from infra.emulation.engine import Context

Created = tuple[str, dict[str, Any]]
# Each token's resources in this rollout: (resource ID, recorded inputs).
Declared = Mapping[str, list[tuple[str, Mapping[str, Any]]]]


def stable_hex(*parts: str, length: int = 17) -> str:
    """Deterministic hex digits derived from ``parts`` (the preview's fake identifiers)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class PreviewNames:
    """What the offline preview knows about one resource when it invents its identifiers."""

    token: str
    name: str
    physical: str
    region: str
    account_id: str
    # The resource's inputs, for an output the provider derives from them (a signing job's
    # signed copy lands in the bucket the job names).
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> str:
        """The token's module ("ec2" for ``aws:ec2/vpc:Vpc``), the ARN's service by default."""
        return self.token.split(":")[1].split("/")[0]

    def arn(self, service: str, resource: str) -> str:
        """A regional ARN of this preview's account."""
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"


@dataclass(frozen=True)
class PreviewIdentity:
    """The ID and ARN the preview answers for a resource, plus any other output it fakes."""

    id: str
    arn: str
    outputs: dict[str, Any] = field(default_factory=dict)


class ResourceType:
    """How one Pulumi type is made real in the emulator and named in the preview.

    Subclasses set ``token`` and implement ``create``; the rest has defaults that fit a
    sub-resource living and dying with its parent (always "exists", cannot be deleted or
    updated on its own). A type whose changed inputs can be applied in place lists them
    in ``updatable_keys`` and implements ``update``; a type written with PUT semantics
    (the same call creates and overwrites) sets ``overwrite_in_place``.
    """

    token: ClassVar[str] = ""
    # Prefix of the preview's fake ID ("vpc-"); the ID is the prefix plus 17 hex digits.
    id_prefix: ClassVar[str] = ""
    updatable_keys: ClassVar[frozenset[str]] = frozenset()
    overwrite_in_place: ClassVar[bool] = False
    # Set on a type only the offline preview names: why the emulated rollout cannot create it.
    preview_only: ClassVar[str] = ""

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        """Create the resource from its plain inputs; return its ID and extra outputs."""
        reason = f": {self.preview_only}" if self.preview_only else ""
        raise UnsupportedResourceType(
            f"the emulated rollout cannot create {self.token or type(self).__name__} ({name}){reason}")

    def exists(self, ctx: Context, resource_id: str) -> bool:
        """Whether the recorded resource is still in the emulator (a lost one is created again)."""
        return True

    def update(self, ctx: Context, name: str, resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Apply changed ``updatable_keys`` in place; return the extra outputs."""
        raise NotImplementedError(f"{self.token} has no in-place update")

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        """Delete the resource (``inputs`` are the recorded ones); a resource already gone is fine."""
        raise NotImplementedError(f"{self.token} cannot be deleted in the emulator")

    def repair(self, ctx: Context, resource_id: str, declared: Declared) -> int:
        """Undo what was changed outside the program (drift the ``exists``/inputs check cannot
        see, such as rules added to a group by hand); ``declared`` maps each token to the
        records of this rollout. Returns how many changes were undone."""
        return 0

    @property
    def can_update(self) -> bool:
        return type(self).update is not ResourceType.update

    @property
    def can_delete(self) -> bool:
        return type(self).delete is not ResourceType.delete

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        """Deterministic ID and ARN for the offline preview: prefixed hex and a regional ARN."""
        return PreviewIdentity(
            id=self.id_prefix + stable_hex(names.token, names.name),
            arn=names.arn(names.service, names.physical),
        )


REGISTRY: dict[str, ResourceType] = {}
# Identifiers for a token no ResourceType declares: the preview plans any type.
GENERIC = ResourceType()

T = TypeVar("T", bound=type[ResourceType])


def register(cls: T) -> T:
    """Class decorator: add one instance of ``cls`` to REGISTRY under its token."""
    if not cls.token:
        raise TypeError(f"{cls.__name__} declares no token")
    if cls.token in REGISTRY:
        raise TypeError(f"{cls.token} is registered twice ({type(REGISTRY[cls.token]).__name__}, {cls.__name__})")
    instance = cls()
    if cls.updatable_keys and not instance.can_update:
        raise TypeError(f"{cls.__name__} lists updatable_keys but implements no update()")
    REGISTRY[cls.token] = instance
    return cls


def preview_identity(names: PreviewNames) -> PreviewIdentity:
    """The preview's identifiers for ``names.token``, from its ResourceType if there is one."""
    return REGISTRY.get(names.token, GENERIC).preview_identity(names)
