from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.bootstrap_pack_entries_item import BootstrapPackEntriesItem
    from ..models.bootstrap_pack_verification import BootstrapPackVerification


T = TypeVar("T", bound="BootstrapPack")


@_attrs_define
class BootstrapPack:
    """
    Attributes:
        entries (list[BootstrapPackEntriesItem]):
        verification (BootstrapPackVerification):
    """

    entries: list[BootstrapPackEntriesItem]
    verification: BootstrapPackVerification
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        entries = []
        for entries_item_data in self.entries:
            entries_item = entries_item_data.to_dict()
            entries.append(entries_item)

        verification = self.verification.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "entries": entries,
                "verification": verification,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.bootstrap_pack_entries_item import BootstrapPackEntriesItem  # noqa: PLC0415
        from ..models.bootstrap_pack_verification import BootstrapPackVerification  # noqa: PLC0415

        d = dict(src_dict)
        entries = []
        _entries = d.pop("entries")
        for entries_item_data in _entries:
            entries_item = BootstrapPackEntriesItem.from_dict(entries_item_data)

            entries.append(entries_item)

        verification = BootstrapPackVerification.from_dict(d.pop("verification"))

        bootstrap_pack = cls(
            entries=entries,
            verification=verification,
        )

        bootstrap_pack.additional_properties = d
        return bootstrap_pack

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
