from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="VerifyRun")


@_attrs_define
class VerifyRun:
    """
    Attributes:
        run (str): the id of a succeeded run of the token's tenant
    """

    run: str

    def to_dict(self) -> dict[str, Any]:
        run = self.run

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "run": run,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        run = d.pop("run")

        verify_run = cls(
            run=run,
        )

        return verify_run
