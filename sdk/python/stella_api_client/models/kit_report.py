from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.kit_report_volumes_item import KitReportVolumesItem


T = TypeVar("T", bound="KitReport")


@_attrs_define
class KitReport:
    """
    Attributes:
        exit_code (int):
        verified (bool):
        volumes (list[KitReportVolumesItem]):
    """

    exit_code: int
    verified: bool
    volumes: list[KitReportVolumesItem]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        exit_code = self.exit_code

        verified = self.verified

        volumes = []
        for volumes_item_data in self.volumes:
            volumes_item = volumes_item_data.to_dict()
            volumes.append(volumes_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "exitCode": exit_code,
                "verified": verified,
                "volumes": volumes,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.kit_report_volumes_item import KitReportVolumesItem  # noqa: PLC0415

        d = dict(src_dict)
        exit_code = d.pop("exitCode")

        verified = d.pop("verified")

        volumes = []
        _volumes = d.pop("volumes")
        for volumes_item_data in _volumes:
            volumes_item = KitReportVolumesItem.from_dict(volumes_item_data)

            volumes.append(volumes_item)

        kit_report = cls(
            exit_code=exit_code,
            verified=verified,
            volumes=volumes,
        )

        kit_report.additional_properties = d
        return kit_report

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
