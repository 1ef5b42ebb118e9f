from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="KitVerify")


@_attrs_define
class KitVerify:
    """
    Attributes:
        dirs (list[str]): absolute paths on the server host: kit volume directories or a kit directory (its vol-NN)
    """

    dirs: list[str]

    def to_dict(self) -> dict[str, Any]:
        dirs = self.dirs

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dirs": dirs,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        dirs = cast(list[str], d.pop("dirs"))

        kit_verify = cls(
            dirs=dirs,
        )

        return kit_verify
