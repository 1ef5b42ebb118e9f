from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.bootstrap_pushed_pushed_item import BootstrapPushedPushedItem


T = TypeVar("T", bound="BootstrapPushed")


@_attrs_define
class BootstrapPushed:
    """
    Attributes:
        pushed (list[BootstrapPushedPushedItem]):
        run (str):
    """

    pushed: list[BootstrapPushedPushedItem]
    run: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        pushed = []
        for pushed_item_data in self.pushed:
            pushed_item = pushed_item_data.to_dict()
            pushed.append(pushed_item)

        run = self.run

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "pushed": pushed,
                "run": run,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.bootstrap_pushed_pushed_item import BootstrapPushedPushedItem  # noqa: PLC0415

        d = dict(src_dict)
        pushed = []
        _pushed = d.pop("pushed")
        for pushed_item_data in _pushed:
            pushed_item = BootstrapPushedPushedItem.from_dict(pushed_item_data)

            pushed.append(pushed_item)

        run = d.pop("run")

        bootstrap_pushed = cls(
            pushed=pushed,
            run=run,
        )

        bootstrap_pushed.additional_properties = d
        return bootstrap_pushed

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
