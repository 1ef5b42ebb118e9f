from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.distributed_distribution import DistributedDistribution


T = TypeVar("T", bound="Distributed")


@_attrs_define
class Distributed:
    """
    Attributes:
        distribution (DistributedDistribution):
        type_ (str):
    """

    distribution: DistributedDistribution
    type_: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        distribution = self.distribution.to_dict()

        type_ = self.type_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "distribution": distribution,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.distributed_distribution import DistributedDistribution  # noqa: PLC0415

        d = dict(src_dict)
        distribution = DistributedDistribution.from_dict(d.pop("distribution"))

        type_ = d.pop("type")

        distributed = cls(
            distribution=distribution,
            type_=type_,
        )

        distributed.additional_properties = d
        return distributed

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
