from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.profile_patch_settings import ProfilePatchSettings


T = TypeVar("T", bound="ProfilePatch")


@_attrs_define
class ProfilePatch:
    """
    Attributes:
        settings (ProfilePatchSettings):
    """

    settings: ProfilePatchSettings

    def to_dict(self) -> dict[str, Any]:
        settings = self.settings.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "settings": settings,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.profile_patch_settings import ProfilePatchSettings  # noqa: PLC0415

        d = dict(src_dict)
        settings = ProfilePatchSettings.from_dict(d.pop("settings"))

        profile_patch = cls(
            settings=settings,
        )

        return profile_patch
