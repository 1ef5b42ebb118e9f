from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.run_create_selectors import RunCreateSelectors
    from ..models.run_options import RunOptions


T = TypeVar("T", bound="RunCreate")


@_attrs_define
class RunCreate:
    """
    Attributes:
        profile (str):
        options (RunOptions | Unset):
        selectors (RunCreateSelectors | Unset):
    """

    profile: str
    options: RunOptions | Unset = UNSET
    selectors: RunCreateSelectors | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        profile = self.profile

        options: dict[str, Any] | Unset = UNSET
        if not isinstance(self.options, Unset):
            options = self.options.to_dict()

        selectors: dict[str, Any] | Unset = UNSET
        if not isinstance(self.selectors, Unset):
            selectors = self.selectors.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "profile": profile,
            }
        )
        if options is not UNSET:
            field_dict["options"] = options
        if selectors is not UNSET:
            field_dict["selectors"] = selectors

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.run_create_selectors import RunCreateSelectors  # noqa: PLC0415
        from ..models.run_options import RunOptions  # noqa: PLC0415

        d = dict(src_dict)
        profile = d.pop("profile")

        _options = d.pop("options", UNSET)
        options: RunOptions | Unset
        if isinstance(_options, Unset):
            options = UNSET
        else:
            options = RunOptions.from_dict(_options)

        _selectors = d.pop("selectors", UNSET)
        selectors: RunCreateSelectors | Unset
        if isinstance(_selectors, Unset):
            selectors = UNSET
        else:
            selectors = RunCreateSelectors.from_dict(_selectors)

        run_create = cls(
            profile=profile,
            options=options,
            selectors=selectors,
        )

        return run_create
