from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="HoldRequest")


@_attrs_define
class HoldRequest:
    """
    Attributes:
        bundle (str): the sealed evidence bundle to hold
        reason (str):
    """

    bundle: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        bundle = self.bundle

        reason = self.reason

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "bundle": bundle,
                "reason": reason,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bundle = d.pop("bundle")

        reason = d.pop("reason")

        hold_request = cls(
            bundle=bundle,
            reason=reason,
        )

        return hold_request
