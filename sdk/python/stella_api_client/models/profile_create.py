from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.profile_create_settings import ProfileCreateSettings


T = TypeVar("T", bound="ProfileCreate")


@_attrs_define
class ProfileCreate:
    """
    Attributes:
        base (str):
        id (str):
        settings (ProfileCreateSettings | Unset):
    """

    base: str
    id: str
    settings: ProfileCreateSettings | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        base = self.base

        id = self.id

        settings: dict[str, Any] | Unset = UNSET
        if not isinstance(self.settings, Unset):
            settings = self.settings.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "base": base,
                "id": id,
            }
        )
        if settings is not UNSET:
            field_dict["settings"] = settings

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.profile_create_settings import ProfileCreateSettings  # noqa: PLC0415

        d = dict(src_dict)
        base = d.pop("base")

        id = d.pop("id")

        _settings = d.pop("settings", UNSET)
        settings: ProfileCreateSettings | Unset
        if isinstance(_settings, Unset):
            settings = UNSET
        else:
            settings = ProfileCreateSettings.from_dict(_settings)

        profile_create = cls(
            base=base,
            id=id,
            settings=settings,
        )

        return profile_create
