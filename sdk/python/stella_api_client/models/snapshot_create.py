from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.snapshot_create_kind import SnapshotCreateKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="SnapshotCreate")


@_attrs_define
class SnapshotCreate:
    """
    Attributes:
        key (str): the signing key that seals it
        kind (SnapshotCreateKind):
        ref (str): a run id (or unique prefix), policy or job id
        reason (str | Unset):  Default: ''.
    """

    key: str
    kind: SnapshotCreateKind
    ref: str
    reason: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        kind = self.kind.value

        ref = self.ref

        reason = self.reason

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "key": key,
                "kind": kind,
                "ref": ref,
            }
        )
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key = d.pop("key")

        kind = SnapshotCreateKind(d.pop("kind"))

        ref = d.pop("ref")

        reason = d.pop("reason", UNSET)

        snapshot_create = cls(
            key=key,
            kind=kind,
            ref=ref,
            reason=reason,
        )

        return snapshot_create
